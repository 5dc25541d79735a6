"""The grading child: runs a submission's cells inside the sandbox and exports probe data.

    python -m nncourse.grading.child JOB_DIR

Reads JOB_DIR/job.json, runs each step in an IPython shell (answers may use magics), and for a
test cell lets ``check`` write its probe data to JOB_DIR/out instead of judging. Progress goes
to the file descriptor in NNCOURSE_PROGRESS_FD so the grader can time each cell. Nothing this
process writes is trusted: it is only data for the judges.
"""
import json
import os
import sys


def main(job_dir: str) -> None:
    sys.dont_write_bytecode = True
    with open(os.path.join(job_dir, "job.json")) as f:
        spec = json.load(f)
    progress = os.fdopen(int(os.environ["NNCOURSE_PROGRESS_FD"]), "w", buffering=1)
    out_dir = os.path.join(job_dir, "out")

    # import everything the checks need before the guard is installed
    import matplotlib
    matplotlib.use("Agg")
    import torch  # noqa: F401
    import nncourse  # noqa: F401
    from nncourse import checking
    checking._load_exercise_modules()
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance(history_length=0)
    shell.history_manager.enabled = False
    from nncourse.grading import guard
    guard.install(job_dir, spec["hidden"], spec["readable"])

    skip, done = set(spec["skip"]), set(spec["done"])
    for index, step in enumerate(spec["steps"]):
        if index in skip:
            continue
        progress.write(f"start {index}\n")
        if step["kind"] == "test":
            if step["cell_id"] in done:
                progress.write(f"end {index}\n")
                continue
            checking.export_to(out_dir, step["cell_id"])
        result = shell.run_cell(step["source"], store_history=False)
        checking.export_to(None)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            with open(os.path.join(out_dir, f"{step['cell_id']}__error.json"), "w") as f:
                json.dump({"ename": type(error).__name__, "evalue": str(error)[:2000]}, f)
        progress.write(f"end {index}\n")
    progress.write("finished\n")
    progress.flush()
    sys.stdout.flush()
    os._exit(0)   # skip interpreter teardown: learner objects' __del__ must not change anything now


if __name__ == "__main__":
    main(sys.argv[1])
