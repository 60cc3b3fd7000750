"""Execute one notebook with Jupyter's own machinery, as `jupyter nbconvert --execute` does.

Usage: /usr/bin/python3 scripts/execute-notebook.py IN.ipynb OUT.ipynb --cwd DIR [--timeout S] [--echo]

It uses nbclient (the library behind `nbconvert --execute`) rather than nbconvert itself for two
things nbconvert does not do:
  * the executed notebook is written to OUT even when a cell fails, so the failing cell and its
    error output can be read there (nbconvert writes nothing then);
  * with --echo, it says which cell runs and echoes the text the cells print, so a long training
    cell shows its progress in the terminal.

The kernel is the one the notebook names (tslab); it runs with its working directory at --cwd,
as JupyterLab runs it beside the notebook. Exit status: 0 when every cell ran, 1 otherwise, with
a last line on stderr that names the cell.
"""
import argparse
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError


class EchoingClient(NotebookClient):
    """A NotebookClient that can echo the cells' text output to this process's stdout."""

    echo = False
    # True while the terminal's last line is a progress line redrawn in place (no newline yet).
    redrawing = False

    def say(self, text):
        if self.redrawing:
            text = "\n" + text
            self.redrawing = False
        sys.stdout.write(text)
        sys.stdout.flush()

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if self.echo and out is not None and out.get("output_type") == "stream":
            self.say(indent(out["text"]))
        return out

    def process_message(self, msg, cell, cell_index):
        # A display updated in place (tslab's newDisplay(): the training progress line) is redrawn
        # in place here too, on a terminal; elsewhere it would print one line per step.
        if self.echo and sys.stdout.isatty() and msg["msg_type"] == "update_display_data":
            text = msg["content"].get("data", {}).get("text/plain", "")
            if text:
                sys.stdout.write("\r    " + text.splitlines()[-1][:150] + "\x1b[K")  # ESC[K: erase the rest of the line
                sys.stdout.flush()
                self.redrawing = True
        return super().process_message(msg, cell, cell_index)


def indent(text):
    return "".join("    " + line for line in text.splitlines(keepends=True))


def describe(nb, index):
    """How a person finds the cell: its position, its id and its first line of code."""
    cell = nb.cells[index]
    code_number = sum(1 for c in nb.cells[: index + 1] if c.cell_type == "code")
    first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f'cell {index + 1} of {len(nb.cells)} (code cell {code_number}, id "{cell.get("id", "?")}"): {first_line.strip()[:80]}'


def error_text(cell, lines=25):
    """The end of what a failed cell wrote: an error output's traceback, or its stderr (tslab's way)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])) or f'{out.get("ename")}: {out.get("evalue")}')
        elif out.get("output_type") == "stream" and out.get("name") == "stderr":
            parts.append(out["text"])
    tail = "\n".join(parts).strip().splitlines()[-lines:]
    return indent("\n".join(tail))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--cwd", required=True, help="the kernel's working directory")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run")
    parser.add_argument("--echo", action="store_true", help="print each cell's number and its text output")
    args = parser.parse_args()

    nb = nbformat.read(args.input, as_version=4)
    name = args.input.rsplit("/", 1)[-1]
    current = {"index": None, "reply": {}}

    def on_cell_start(cell, cell_index):
        current["index"] = cell_index
        if args.echo and cell.cell_type == "code":
            client.say(f"  [{name}] {describe(nb, cell_index)}\n")

    def on_cell_error(cell, cell_index, execute_reply):
        current["reply"] = execute_reply.get("content", {})

    client = EchoingClient(
        nb,
        timeout=args.timeout,
        kernel_name=nb.metadata.get("kernelspec", {}).get("name", "tslab"),
        resources={"metadata": {"path": args.cwd}},
        on_cell_start=on_cell_start,
        on_cell_error=on_cell_error,
    )
    client.echo = args.echo
    failure = None
    try:
        client.execute()
    except CellExecutionError:
        failure = "raised an error"
    except CellTimeoutError:
        failure = f"ran longer than {args.timeout} s"
    except DeadKernelError:
        failure = "the kernel died (its last words, if any, are above)"
    except Exception as error:  # the kernel did not start, or Jupyter itself failed
        failure = f"could not run: {type(error).__name__}: {error}"
    finally:
        nbformat.write(nb, args.output)
    if failure:
        index = current["index"]
        where = describe(nb, index) if index is not None else "before the first cell"
        details = error_text(nb.cells[index]) if index is not None else ""
        if not details.strip():  # the cell printed nothing: say what the kernel replied
            reply = current["reply"]
            details = indent(f'{reply["ename"]}: {reply.get("evalue", "")}' if reply.get("ename") else "(no error message from the kernel)")
        print(f"execute-notebook: {name}: {where} — {failure}" + (":\n" + details if details else ""), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
