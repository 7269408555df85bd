"""The package's shape, read from its source: the layer-support table is the
only place that decides by Keras layer class, the imports form no cycle and
take no private name from another module, and docs/architecture.md draws the
import graph the code has."""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
REGISTRY = os.path.join("tf_qdq", "keras", "registry.py")


def _sources():
  for directory, _, files in os.walk(os.path.join(ROOT, "tf_qdq")):
    for name in sorted(files):
      if name.endswith(".py") and name != "_build_info.py":
        path = os.path.join(directory, name)
        yield os.path.relpath(path, ROOT), path


def _layer_aliases(tree):
  """Names bound to keras.layers in a module (`L = keras.layers`,
  `from keras import layers`)."""
  aliases = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Assign) and ast.unparse(node.value) in (
        "keras.layers", "keras.src.layers"):
      aliases.update(t.id for t in node.targets if isinstance(t, ast.Name))
    if isinstance(node, ast.ImportFrom) and node.module == "keras":
      aliases.update(a.asname or a.name for a in node.names
                     if a.name == "layers")
  return aliases


def _names_a_layer_class(expr, aliases):
  """Whether `expr` mentions keras.layers.X (or an alias's .X)."""
  for node in ast.walk(expr):
    if isinstance(node, ast.Attribute):
      owner = ast.unparse(node.value)
      if owner in ("keras.layers", *aliases) and node.attr[:1].isupper():
        return True
  return False


def class_decisions(source):
  """Lines of `source` that test a value against a Keras layer class:
  isinstance/issubclass(x, keras.layers.X), type(x) is/in/== ..."""
  tree = ast.parse(source)
  aliases = _layer_aliases(tree)
  found = []
  for node in ast.walk(tree):
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and
        node.func.id in ("isinstance", "issubclass") and len(node.args) == 2
        and _names_a_layer_class(node.args[1], aliases)):
      found.append(node.lineno)
    if isinstance(node, ast.Compare) and any(
        isinstance(side, ast.Call) and isinstance(side.func, ast.Name) and
        side.func.id == "type" for side in [node.left, *node.comparators]):
      if any(_names_a_layer_class(side, aliases)
             for side in [node.left, *node.comparators]):
        found.append(node.lineno)
  return found


def test_the_detector_finds_class_decisions():
  source = ("import keras\nL = keras.layers\n"
            "a = isinstance(x, keras.layers.Dense)\n"
            "b = type(x) in (L.Conv2D, L.Dense)\n"
            "c = isinstance(x, keras.Model)\n"
            "d = keras.layers.Activation('relu')\n")
  assert class_decisions(source) == [3, 4]


def test_only_the_registry_decides_by_layer_class():
  offenders = []
  for relative, path in _sources():
    if relative == REGISTRY:
      continue
    with open(path, encoding="utf-8") as f:
      offenders += [f"{relative}:{n}" for n in class_decisions(f.read())]
  assert not offenders, (
      "layer classes are tested outside tf_qdq/keras/registry.py: "
      f"{offenders}; give the class an entry there instead")
  with open(os.path.join(ROOT, REGISTRY), encoding="utf-8") as f:
    assert class_decisions(f.read()), "the registry decides nothing?"


@pytest.mark.parametrize("args", [[], ["--check", "docs/architecture.md"]],
                         ids=["acyclic, no private imports", "drawn"])
def test_import_graph(args):
  """tools/import_graph.py exits 1 on a cycle, on a private name imported
  from another module, and (--check) when the drawn graph is stale."""
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "import_graph.py"), *args],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr


def test_the_import_graph_tool_finds_cycles():
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location(
      "import_graph", os.path.join(ROOT, "tools", "import_graph.py"))
  tool = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tool)
  assert tool.cycles({"a": ["b"], "b": ["c"], "c": ["a"]}) == [
      ["a", "b", "c", "a"]]
  assert tool.cycles({"a": ["b", "c"], "b": ["c"], "c": []}) == []
