"""The import graph of the tf_qdq package, read from its source (no import
runs): which module imports which, every import counted, including those
inside functions.

    python tools/import_graph.py                 # the graph as Mermaid
    python tools/import_graph.py --check FILE    # FILE holds it (exit 1 if not)
    python tools/import_graph.py --write FILE    # puts it into FILE

FILE (docs/architecture.md) carries the graph between the lines
`<!-- import-graph:begin -->` and `<!-- import-graph:end -->`. Also exits 1
when the graph has a cycle or a module imports a private name (`_x`, not a
module) of another module: tests/keras/test_package_layout.py runs this.
"""
import argparse
import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "tf_qdq"
BEGIN = "<!-- import-graph:begin -->"
END = "<!-- import-graph:end -->"


def modules(root=ROOT):
  """{module name: path} of every .py file of the package."""
  found = {}
  base = os.path.join(root, PACKAGE)
  for directory, _, files in os.walk(base):
    for name in files:
      if not name.endswith(".py") or name == "_build_info.py":
        continue
      path = os.path.join(directory, name)
      parts = os.path.relpath(path, root)[:-3].split(os.sep)
      if parts[-1] == "__init__":
        parts = parts[:-1]
      found[".".join(parts)] = path
  # Build outputs are modules too: the compiled core and the build record.
  found.setdefault(f"{PACKAGE}._core", None)
  found.setdefault(f"{PACKAGE}._build_info", None)
  return found


def _resolve(module, node, known):
  """The package modules an import node names, and the private non-module
  names it imports: ([module], [(module, name)])."""
  targets, private = [], []
  if isinstance(node, ast.Import):
    for alias in node.names:
      if alias.name.split(".")[0] == PACKAGE:
        targets.append(alias.name)
    return targets, private
  if node.level:  # relative: from the module's package
    package = module.split(".")
    is_package = module in known and known[module] and known[
        module].endswith("__init__.py")
    package = package if is_package else package[:-1]
    base = ".".join(package[:len(package) - node.level + 1] +
                    ([node.module] if node.module else []))
  else:
    base = node.module or ""
  if base.split(".")[0] != PACKAGE:
    return targets, private
  for alias in node.names:
    candidate = f"{base}.{alias.name}"
    if candidate in known:
      targets.append(candidate)  # a submodule
    else:
      targets.append(base)
      if alias.name.startswith("_") and not alias.name.startswith("__"):
        private.append((base, alias.name))
  return targets, private


def graph(root=ROOT):
  """({module: sorted imported modules}, [(importer, module, private name)])."""
  known = modules(root)
  edges, private = {}, []
  for module, path in sorted(known.items()):
    edges[module] = set()
    if path is None:
      continue
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
      if isinstance(node, (ast.Import, ast.ImportFrom)):
        targets, names = _resolve(module, node, known)
        edges[module].update(t for t in targets if t != module)
        private.extend((module, m, n) for m, n in names)
  # A module's import also runs its packages' __init__; edges to a package
  # from its own submodules are not imports of anything new, so drop them.
  for module, targets in edges.items():
    edges[module] = sorted(t for t in targets
                           if not module.startswith(t + ".") and t in known)
  return edges, private


def cycles(edges):
  """The import cycles, each as a list of modules (empty: none)."""
  found, state, stack = [], {}, []

  def visit(m):
    state[m] = "open"
    stack.append(m)
    for t in edges.get(m, ()):
      if state.get(t) == "open":
        found.append(stack[stack.index(t):] + [t])
      elif t not in state:
        visit(t)
    stack.pop()
    state[m] = "done"

  for m in sorted(edges):
    if m not in state:
      visit(m)
  return found


def mermaid(edges):
  """The graph as a Mermaid flowchart, importers above what they import."""
  ids = {m: m.replace(".", "_") for m in edges}
  lines = ["```mermaid", "flowchart TD"]
  for m in sorted(edges):
    lines.append(f"  {ids[m]}[\"{m}\"]")
  for m in sorted(edges):
    for t in edges[m]:
      lines.append(f"  {ids[m]} --> {ids[t]}")
  lines.append("```")
  return "\n".join(lines)


def _section(text):
  if BEGIN not in text or END not in text:
    return None
  return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--check", metavar="FILE")
  parser.add_argument("--write", metavar="FILE")
  args = parser.parse_args(argv)
  edges, private = graph()
  problems = [f"import cycle: {' -> '.join(c)}" for c in cycles(edges)]
  problems += [f"{importer} imports the private name {name} of {module}"
               for importer, module, name in private]
  drawn = mermaid(edges)
  if args.write:
    with open(args.write, encoding="utf-8") as f:
      text = f.read()
    if _section(text) is None:
      problems.append(f"{args.write} has no {BEGIN} ... {END} section")
    else:
      head, rest = text.split(BEGIN, 1)
      tail = rest.split(END, 1)[1]
      with open(args.write, "w", encoding="utf-8") as f:
        f.write(f"{head}{BEGIN}\n{drawn}\n{END}{tail}")
  elif args.check:
    with open(args.check, encoding="utf-8") as f:
      if _section(f.read()) != drawn:
        problems.append(
            f"{args.check}'s import graph differs from the code's: run "
            f"python tools/import_graph.py --write {args.check}")
  else:
    print(drawn)
  for p in problems:
    print(f"import_graph: {p}", file=sys.stderr)
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main())
