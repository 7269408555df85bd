"""Generated sections of a Markdown file, between a pair of HTML comments.

`make bench` writes one file per script (benchmarks.md, qat_step.md), but a
few places show one script's table inside another file: the README's headline
and benchmarks.md's QAT-step section. Each is kept between two markers and
replaced in place, so re-rendering either file keeps the other's section.
benchmarks.md also keeps one block per machine measured (marked_blocks), so
a run on one machine rewrites its own blocks and keeps the others.
"""
import re

QAT_STEP_START = "<!-- bench:qat_step:start -->"
QAT_STEP_END = "<!-- bench:qat_step:end -->"


def _read_marked(path, start, end):
  """(text, i, j): the file's text and the two markers' offsets, or None."""
  text = read_text(path)
  if not text:
    return None
  i, j = text.find(start), text.find(end)
  return None if i < 0 or j < i else (text, i, j)


def replace_marked(path, start, end, body):
  """Replaces the text between `start` and `end` in `path` by `body`.

  Returns False (and writes nothing) when the file or a marker is missing."""
  found = _read_marked(path, start, end)
  if found is None:
    return False
  text, i, j = found
  new = text[:i + len(start)] + "\n" + body.strip("\n") + "\n" + text[j:]
  if new != text:
    with open(path, "w", encoding="utf-8") as f:
      f.write(new)
  return True


def marked_section(path, start, end):
  """The text between the markers in `path`, or None."""
  found = _read_marked(path, start, end)
  if found is None:
    return None
  text, i, j = found
  return text[i + len(start):j].strip("\n")


def block_markers(kind, key):
  """The pair of markers around one machine's block of kind `kind`."""
  return (f"<!-- bench:{kind}[{key}]:start -->",
          f"<!-- bench:{kind}[{key}]:end -->")


def marked_blocks(text, kind):
  """Key -> body of every block of kind `kind` in `text`, in their order."""
  pattern = (rf"<!-- bench:{re.escape(kind)}\[([a-z0-9-]+)\]:start -->\n?"
             rf"(.*?)<!-- bench:{re.escape(kind)}\[\1\]:end -->")
  return {m.group(1): m.group(2).strip("\n")
          for m in re.finditer(pattern, text or "", re.S)}


def read_text(path):
  """The file's text, or "" when there is none."""
  try:
    with open(path, encoding="utf-8") as f:
      return f.read()
  except OSError:
    return ""
