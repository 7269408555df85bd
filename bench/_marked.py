"""Generated sections of a Markdown file, between a pair of HTML comments.

`make bench` writes one file per script (benchmarks.md, qat_step.md), but a
few places show one script's table inside another file: the README's headline
and benchmarks.md's QAT-step section. Each is kept between two markers and
replaced in place, so re-rendering either file keeps the other's section.
"""

QAT_STEP_START = "<!-- bench:qat_step:start -->"
QAT_STEP_END = "<!-- bench:qat_step:end -->"


def _read_marked(path, start, end):
  """(text, i, j): the file's text and the two markers' offsets, or None."""
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except OSError:
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
