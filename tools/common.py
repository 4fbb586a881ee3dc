"""What several tools share: the repository's folders, errors in one line, the fix hint,
and the copy of a chapter that runs alone."""

import os
import shutil

#: The repository's root (the folder that holds tools/).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The chapters' folder.
CHAPTERS = os.path.join(ROOT, "chapters")


def first_line(text):
    """The first line of `text`, stripped ('' for an empty text)."""
    return (str(text).strip().splitlines() or [""])[0].strip()


def error_line(err):
    """An exception as one line: its type, then the first line of its message if any."""
    message = first_line(err)
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def chapter_name(path):
    """The chapter a path names: ``chapters/07_evidence.md`` -> ``07_evidence``."""
    return os.path.splitext(os.path.basename(path))[0]


def rerun_hint(chapter):
    """The command that re-executes `chapter` (a name such as ``07_evidence``, or a path)."""
    return f"make chapter CHAPTER={chapter_name(chapter)[:2]}"


def is_repository_chapter(path):
    """Whether `path` is one of the repository's own chapters (not a copy or a test's file)."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    return folder == os.path.realpath(CHAPTERS)


def copy_alone(notebook, home):
    """Copy `notebook` alone into a new folder ``home/NAME/``; return the copy's path.

    A chapter run this way sees nothing of the repository around it, as when a reader opens
    one notebook in Colab. `notebook` may be a chapter's ``.md``: its executed ``.ipynb`` is
    copied.
    """
    name = chapter_name(notebook)
    folder = os.path.join(home, name)
    os.makedirs(folder)
    copy = os.path.join(folder, name + ".ipynb")
    shutil.copyfile(os.path.splitext(notebook)[0] + ".ipynb", copy)
    return copy
