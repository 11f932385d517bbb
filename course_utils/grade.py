"""Grade the learners' notebooks with the course's own self-checks.

    python -m course_utils.grade SUBMISSIONS [--out build/grade] [--timeout 120] [--full]
    make grade SUBMISSIONS=folder

Layout. SUBMISSIONS holds one folder per learner, named after the learner, holding that learner's
student notebooks (any of them, as downloaded from Jupyter; subfolders are searched too, hidden
ones such as .ipynb_checkpoints are not):

    submissions/
        ada/01_classification_detection_segmentation.ipynb
        ada/02_vgg11_backbone.ipynb
        bob/01_classification_detection_segmentation (1).ipynb

A file is matched to a course notebook by the number its name starts with (01 to 06), then
confirmed by its cell ids. Other files are ignored; a notebook file directly in SUBMISSIONS, one
whose name has no course number, one that is not JSON or not a notebook, or one whose cells are
another notebook's (or another course's) is reported, in grades.csv and the report, never a crash.

Trustworthy grading. The graded notebook is rebuilt from the *pristine* student notebook (made
in memory from notebooks/ by course_utils.student), matched by cell id: each exercise cell takes
the source of the submission's cell with the same id (missing: the stub, so "not written"); cells
the learner added stay where they were (their helpers may be needed); every other cell, the
self-check cells above all, is the course's own, and a check is called through the module
(`__import__("course_utils.checks").checks.check_x(...)`) so that a learner's `def check_x` or
`check_x = ...` cannot stand in for it. A pass: the check cell ran without an error and the last
line it printed is its "✓ ..." line (the only line starting with ✓; lines printed before it by
the learner's own code, debug prints say, are allowed). A SelfCheckError is "failed" with its
message, or "not written" when the message says so; any other error, or an earlier cell that
crashed, is "could not run" with that error. A "✓" printed anywhere else, an edited or deleted
check cell, an edited call in it: no pass. Not a sandbox: code written to patch course_utils
inside the kernel could still fake a pass, and the learners' code runs with your rights, in
notebooks/ as its working folder; for strangers' submissions run this in a container. Every
graded notebook is kept, executed, under OUT/executed/<learner>/ for audit.

What runs. By default only what grading needs, in order: the notebook's import cells (code cells
of import statements only), the cells the learner added, the exercise cells and the check cells;
no training, no figures, so no checkpoint is needed and notebook 6 needs no download. --full runs
every cell (the slow notebooks then need their checkpoints, `make warm`, and notebook 6 its
download). Each notebook runs in a fresh kernel (python3, working folder notebooks/), at most
--jobs (2) at a time, for at most --timeout seconds (counted from the kernel's start; 120 by
default, 1200 with --full): on time-out, or when the kernel's processes use more than
--memory-limit GB (4), the kernel is killed and the exercises not yet checked are "could not run"
with the reason; the others keep their results.

Output in OUT (build/grade/): grades.csv (learner, notebook, exercise, title, status, message;
status one of passed, failed, not written, could not run; a file that could not be matched to a
notebook is a row with the file's name as notebook and no exercise), report.html (a learner x
exercise table coloured by status, one summary row per exercise: how many passed and the most
common mistake), feedback/<learner>.html (each exercise's status and message, for the learner).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import copy
import csv
import html
import json
import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from .paths import NOTEBOOK_DIR, REPO_ROOT
from .student import SELF_CHECK_TAG, SOLUTION_TAG, SolutionMarkerError, exercises, student_notebook, tags

PASSED, FAILED, NOT_WRITTEN, COULD_NOT_RUN = "passed", "failed", "not written", "could not run"
STATUSES = (PASSED, FAILED, NOT_WRITTEN, COULD_NOT_RUN)
FAST_TIMEOUT_S, FULL_TIMEOUT_S, MEMORY_LIMIT_GB, JOBS = 120, 1200, 4.0, 2
MAX_FILE_BYTES = 200 * 2**20
NOTEBOOK_NUMBER = re.compile(r"^(\d\d)(?!\d)")
LABEL = re.compile(r"^Exercise (\d+) \((.*)\)$")
CSV_COLUMNS = ("learner", "notebook", "exercise", "title", "status", "message")


class SubmissionError(ValueError):
    """A submitted file that cannot be graded; the message names the file and why."""


# --- the course's side: pristine student notebooks and their exercises -------------------------------


@dataclass(frozen=True)
class Exercise:
    number: int
    title: str
    check_id: str  # the id of its self-check cell
    solution_ids: tuple[str, ...]  # the ids of its solution cells


@dataclass
class CourseNotebook:
    """A course notebook as the learners got it: `student` is the pristine student version."""

    name: str  # the file name, e.g. "01_classification_detection_segmentation.ipynb"
    number: str  # "01"
    student: object  # nbformat.NotebookNode
    exercises: list[Exercise]

    @property
    def ids(self) -> set[str]:
        return {cell.id for cell in self.student.cells}


def course_exercises(student) -> list[Exercise]:
    """The exercises of a student notebook, in order: each self-check cell and the solution cells
    under the same "## Exercise N · Title" heading."""
    labels = exercises(student.cells)
    found = []
    for cell, label in zip(student.cells, labels):
        if SELF_CHECK_TAG in tags(cell) and label:
            number, title = LABEL.match(label).groups()
            solutions = tuple(
                c.id for c, other in zip(student.cells, labels) if other == label and SOLUTION_TAG in tags(c)
            )
            found.append(Exercise(int(number), title, cell.id, solutions))
    return found


def load_course(source_dir: Path = NOTEBOOK_DIR) -> dict[str, CourseNotebook]:
    """{"01": CourseNotebook, ...} for every notebooks/NN_*.ipynb with exercises."""
    import nbformat

    course = {}
    for path in sorted(source_dir.glob("[0-9][0-9]*.ipynb")):
        student = student_notebook(nbformat.read(path, as_version=4))
        found = course_exercises(student)
        if found:
            number = NOTEBOOK_NUMBER.match(path.name).group(1)
            course[number] = CourseNotebook(path.name, number, student, found)
    if not course:
        raise FileNotFoundError(f"no course notebooks with exercises in {source_dir}")
    return course


def is_import_cell(source: str) -> bool:
    """True for a code cell made of import statements only (the notebooks' set-up cells)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)


def protected_check(source: str) -> str:
    """The self-check call `check_x(args)` rewritten to call course_utils.checks.check_x itself, so
    that a learner's own `check_x` cannot stand in for it."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("check_"):
            module = ast.parse('__import__("course_utils.checks").checks', mode="eval").body
            node.func = ast.Attribute(value=module, attr=node.func.id, ctx=ast.Load())
    return ast.unparse(ast.fix_missing_locations(tree))


# --- the learner's side: finding and reading submissions ------------------------------------------------


@dataclass
class Result:
    learner: str
    notebook: str
    exercise: int | None
    title: str
    status: str
    message: str

    def row(self) -> list:
        return [self.learner, self.notebook, "" if self.exercise is None else self.exercise, self.title]


@dataclass
class Job:
    """One learner's file for one course notebook."""

    learner: str
    path: Path
    course: CourseNotebook
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def file_problem(learner: str, path: Path, root: Path, message: str) -> Result:
    """The row for a file that could not be matched to a course notebook."""
    return Result(learner, relative(path, root), None, "", COULD_NOT_RUN, message)


def read_submission(path: Path, label: str):
    """The notebook at `path` (nbformat 4), or SubmissionError naming `label` and what is wrong."""
    import nbformat

    if path.stat().st_size > MAX_FILE_BYTES:
        raise SubmissionError(f"{label} is {path.stat().st_size / 2**20:.0f} MB: too large for a notebook")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SubmissionError(f"{label} is not a text file (not UTF-8): not a notebook") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SubmissionError(f"{label} is not JSON ({error.msg}, line {error.lineno}): not a notebook") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or data.get("nbformat") != 4:
        raise SubmissionError(f"{label} is JSON but not a Jupyter notebook (nbformat 4: a 'cells' list)")
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat's own errors are many and undocumented
        raise SubmissionError(f"{label} is not a valid notebook: {type(error).__name__}: {error}") from None
    if not all(isinstance(cell, dict) and "source" in cell and "cell_type" in cell for cell in notebook.cells):
        raise SubmissionError(f"{label} is not a valid notebook: a cell without 'source' or 'cell_type'")
    if not any("id" in cell for cell in notebook.cells):
        raise SubmissionError(
            f"{label} has no cell ids (saved as nbformat 4.4 or older): cannot match its cells with the course's"
        )
    return notebook


def which_notebook(notebook, course: dict[str, CourseNotebook]) -> CourseNotebook | None:
    """The course notebook sharing the most cell ids with `notebook`, None if none shares any."""
    ids = {cell.get("id") for cell in notebook.cells}
    best = max(course.values(), key=lambda c: len(c.ids & ids))
    return best if best.ids & ids else None


def find_jobs(root: Path, course: dict[str, CourseNotebook]) -> tuple[list[str], list[Job], list[Result]]:
    """(the learners, the notebooks to grade, the rows for files that cannot be matched to a course
    notebook) in `root`: root/<learner>/**/NN*.ipynb (see the module docstring)."""
    jobs, problems = [], []
    for path in sorted(root.glob("*.ipynb")):
        problems.append(
            file_problem(
                "", path, root, f"{path.name} is not in a learner's folder: the layout is SUBMISSIONS/<learner>/*.ipynb"
            )
        )
    learners = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in learners:
        files = sorted(
            p
            for p in folder.rglob("*.ipynb")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        chosen: dict[str, Path] = {}
        for path in files:
            label = relative(path, root)
            match = NOTEBOOK_NUMBER.match(path.name)
            if not match or match.group(1) not in course:
                hint = ""
                try:
                    same = which_notebook(read_submission(path, label), course)
                    hint = f"; its cells are notebook {same.number}'s: rename it {same.name}" if same else ""
                except SubmissionError:
                    pass
                names = ", ".join(sorted(course)[:-1]) + " or " + sorted(course)[-1]
                problems.append(
                    file_problem(
                        folder.name,
                        path,
                        root,
                        f"{label}: unknown file name (a course notebook's name starts with {names}){hint}",
                    )
                )
                continue
            number = match.group(1)
            exact = path.name == course[number].name
            if number in chosen and not exact:
                problems.append(
                    file_problem(
                        folder.name,
                        path,
                        root,
                        f"{label}: not graded, {relative(chosen[number], root)} was, for notebook {number}",
                    )
                )
                continue
            if number in chosen:  # the exact course name wins over a copy found before it
                problems.append(
                    file_problem(
                        folder.name,
                        chosen[number],
                        root,
                        f"{relative(chosen[number], root)}: not graded, {label} was, for notebook {number}",
                    )
                )
            chosen[number] = path
        jobs += [Job(folder.name, chosen[number], course[number]) for number in sorted(chosen)]
    return [folder.name for folder in learners], jobs, problems


# --- the graded notebook --------------------------------------------------------------------------------

SETUP, ADDED, SOLUTION, CHECK, OTHER = "set-up", "added", "solution", "check", "other"
WHERE = {SOLUTION: "the exercise's cell", SETUP: "the import cell", ADDED: "a cell the learner added", OTHER: "a cell"}


@dataclass
class Plan:
    """The notebook to run, and the role of each of its cells (SETUP, ADDED, SOLUTION, CHECK, OTHER
    or "markdown"); notes: a remark per exercise number about the submission (a deleted cell...)."""

    notebook: object
    roles: list[str]
    notes: dict[int, str]
    exercises: list[Exercise]

    def index(self, cell_id: str) -> int:
        return next(i for i, cell in enumerate(self.notebook.cells) if cell.get("id") == cell_id)

    def describe(self, index: int) -> str:
        """Which cell `index` is, in words: "the check of exercise 2", "a cell the learner added"..."""
        cell_id = self.notebook.cells[index].get("id")
        for exercise in self.exercises:
            if cell_id == exercise.check_id:
                return f"the check of exercise {exercise.number}"
            if cell_id in exercise.solution_ids:
                return f"the cell of exercise {exercise.number}"
        return WHERE.get(self.roles[index], "a cell")


def graded_notebook(course: CourseNotebook, submission, label: str) -> Plan:
    """The notebook to run for a submission (see the module docstring): the pristine cells, each
    exercise cell with the learner's source, the cells the learner added after the cell they follow."""
    import nbformat

    pristine_ids = course.ids
    if not pristine_ids & {cell.get("id") for cell in submission.cells}:
        raise SubmissionError(
            f"{label}: none of its cells is one of notebook {course.number}'s (by cell id): "
            "is it another notebook, or another course's?"
        )
    theirs, added, anchor = {}, {}, None
    for cell in submission.cells:
        cell_id = cell.get("id")
        if cell_id in pristine_ids:
            theirs.setdefault(cell_id, cell)
            anchor = cell_id
        elif cell.cell_type == "code" and cell.source.strip():
            added.setdefault(anchor, []).append(cell.source)
    exercise_of = {cell_id: ex.number for ex in course.exercises for cell_id in ex.solution_ids}
    notebook = copy.deepcopy(course.student)
    cells, roles, notes = [], [], {}

    def add(cell, role):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
        roles.append(role)

    for source in added.get(None, []):
        add(nbformat.v4.new_code_cell(source), ADDED)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            add(cell, "markdown")
        elif SOLUTION_TAG in tags(cell):
            mine = theirs.get(cell.id)
            if mine is None:
                notes[exercise_of[cell.id]] = "(the exercise's cell is not in the submitted notebook: deleted?)"
            elif mine.cell_type != "code":
                notes[exercise_of[cell.id]] = f"(the exercise's cell was turned into a {mine.cell_type} cell)"
            else:
                cell.source = mine.source
            add(cell, SOLUTION)
        elif SELF_CHECK_TAG in tags(cell):
            cell.source = protected_check(cell.source)
            add(cell, CHECK)
        else:
            add(cell, SETUP if is_import_cell(cell.source) else OTHER)
        for source in added.get(cell.id, []):
            add(nbformat.v4.new_code_cell(source), ADDED)
    notebook.cells = cells
    return Plan(notebook, roles, notes, course.exercises)


def cells_to_run(plan: Plan, full: bool) -> list[int]:
    """Indices of the code cells to run: all of them with `full`, else the set-up, added, solution
    and check cells up to the last check."""
    code = [i for i, role in enumerate(plan.roles) if role != "markdown"]
    if full:
        return code
    last_check = max(i for i, role in enumerate(plan.roles) if role == CHECK)
    return [i for i in code if plan.roles[i] in (SETUP, ADDED, SOLUTION, CHECK) and i <= last_check]


# --- running it -----------------------------------------------------------------------------------------


@dataclass
class Stop:
    """Why the run stopped early, at which cell."""

    index: int
    reason: str


def process_tree(pid: int) -> list:
    """The psutil processes of `pid` and its descendants (those still alive)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_memory(pid: int) -> int:
    """The resident memory, in bytes, of `pid` and its descendants."""
    import psutil

    total = 0
    for process in process_tree(pid):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def kill_tree(pid: int) -> None:
    import psutil

    for process in reversed(process_tree(pid)):
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


async def watch_memory(pid: int, limit: int, every_s: float = 0.05) -> int:
    """Return (the bytes used) once the kernel's processes use more than `limit` bytes."""
    while True:
        used = tree_memory(pid)
        if used > limit:
            return used
        await asyncio.sleep(every_s)


async def run_cells(notebook, indices: list[int], cwd: Path, timeout_s: float, memory_limit: int) -> Stop | None:
    """Run the cells at `indices` of `notebook` (in place) in a fresh python3 kernel in `cwd`, errors
    allowed; None, or where and why it stopped (time-out, memory limit, a dead kernel)."""
    from nbclient import NotebookClient

    client = NotebookClient(
        notebook,
        kernel_name="python3",
        allow_errors=True,
        timeout=None,  # run_in_kernel keeps the time
        shutdown_kernel="immediate",  # every output is in: no need to wait a second for a graceful exit
        resources={"metadata": {"path": str(cwd)}},
    )
    loop = asyncio.get_running_loop()
    deadline, stop, ran = loop.time() + timeout_s, None, False
    try:
        # the kernel's own stderr (start-up warnings) is noise here: its errors reach the cells' outputs
        async with client.async_setup_kernel(stderr=subprocess.DEVNULL):
            stop = await run_in_kernel(client, indices, deadline - loop.time(), timeout_s, memory_limit)
            ran = True
    except Exception as error:  # the kernel did not start, or failed to shut down after the cells ran
        if ran:  # every result is in the cells' outputs already: a failed shutdown changes none
            return stop
        return Stop(-1, f"the kernel failed: {type(error).__name__}: {error}")
    return stop


async def run_in_kernel(client, indices: list[int], seconds: float, timeout_s: float, memory_limit: int) -> Stop | None:
    """Run the cells at `indices` in the client's kernel for at most `seconds`, under `memory_limit`
    bytes; on a time-out or too much memory kill the kernel's processes and say where and why."""
    loop = asyncio.get_running_loop()
    deadline, pid = loop.time() + seconds, client.km.provisioner.pid
    watch = asyncio.ensure_future(watch_memory(pid, memory_limit))
    try:
        for count, index in enumerate(indices, start=1):
            task = asyncio.ensure_future(client.async_execute_cell(client.nb.cells[index], index, count))
            remaining = max(deadline - loop.time(), 0.0)
            await asyncio.wait({task, watch}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if task.done() and not watch.done():
                if task.exception() is not None:
                    return Stop(index, f"the kernel died ({type(task.exception()).__name__})")
                continue
            if watch.done():
                reason = f"memory limit: above {memory_limit / 2**30:.1f} GB"
            else:
                reason = f"time-out after {timeout_s:g} s"
            kill_tree(pid)
            await asyncio.wait({task}, timeout=10)
            if task.done():
                task.exception()  # retrieved: the dead kernel's error is expected
            else:
                task.cancel()
            return Stop(index, reason)
    finally:
        watch.cancel()
    return None


# --- judging the executed check cells -------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def first_error(cell) -> tuple[str, str] | None:
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            return output.ename, ANSI.sub("", output.evalue)
    return None


def stdout(cell) -> str:
    return "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stdout")


def could_not_run_cause(plan: Plan, exercise: Exercise, check: int) -> str:
    """The likeliest cause of a check cell's error other than SelfCheckError: the first error of
    this exercise's cells, else of the import cells, else of the cells added since the last check,
    else the check's own."""
    previous = max([i for i, role in enumerate(plan.roles[:check]) if role == CHECK], default=-1)
    cells = plan.notebook.cells
    candidates = [plan.index(cell_id) for cell_id in exercise.solution_ids]
    candidates += [i for i, role in enumerate(plan.roles[:check]) if role == SETUP]
    candidates += [i for i in range(previous + 1, check) if plan.roles[i] in (ADDED, OTHER)]
    for index in candidates:
        error = first_error(cells[index])
        if error:
            return f"{plan.describe(index)} raised {error[0]}: {error[1]}"
    ename, evalue = first_error(cells[check])
    return f"the check raised {ename}: {evalue}"


def not_written_markers() -> list[str]:
    """How a self-check starts its "not written yet" message, in each edition's language."""
    from .checks._common import NOT_WRITTEN as CHECK_NOT_WRITTEN
    from .i18n import in_every_language

    return [text.split(":")[0] for text in in_every_language(CHECK_NOT_WRITTEN).values()]


def judge(plan: Plan, exercise: Exercise, stop: Stop | None) -> tuple[str, str]:
    """(status, message) of one exercise from its executed check cell."""
    check = plan.index(exercise.check_id)
    note = plan.notes.get(exercise.number, "")
    if stop is not None and stop.index <= check:
        where = f" (in {plan.describe(stop.index)})" if stop.index >= 0 else ""
        return COULD_NOT_RUN, f"{stop.reason}{where}"
    cell = plan.notebook.cells[check]
    error = first_error(cell)
    if error is None:
        lines = [line for line in stdout(cell).splitlines() if line.strip()]
        ticks = [line for line in lines if line.lstrip().startswith("✓")]
        if lines and lines[-1].startswith("✓ ") and len(ticks) == 1:
            return PASSED, lines[-1]
        shown = " | ".join(lines)[-300:] or "nothing"
        return FAILED, f"the self-check reported no pass (it printed: {shown})"
    ename, evalue = error
    if ename == "SelfCheckError":
        status = NOT_WRITTEN if any(marker in evalue for marker in not_written_markers()) else FAILED
        return status, f"{evalue} {note}".strip()
    return COULD_NOT_RUN, f"{could_not_run_cause(plan, exercise, check)} {note}".strip()


# --- one job, all jobs ----------------------------------------------------------------------------------


async def grade_job(job: Job, root: Path, out: Path, options: argparse.Namespace) -> None:
    """Grade one learner's notebook: fill job.results (one per exercise of the notebook)."""
    import nbformat

    label, start = relative(job.path, root), time.perf_counter()
    exercises_ = job.course.exercises

    def every(status, message):
        job.results = [Result(job.learner, job.course.name, e.number, e.title, status, message) for e in exercises_]

    try:
        plan = graded_notebook(job.course, read_submission(job.path, label), label)
    except SubmissionError as error:
        every(COULD_NOT_RUN, str(error))
        return
    stop = await run_cells(
        plan.notebook, cells_to_run(plan, options.full), options.cwd, options.timeout, int(options.memory_limit * 2**30)
    )
    job.results = [Result(job.learner, job.course.name, e.number, e.title, *judge(plan, e, stop)) for e in exercises_]
    job.seconds = time.perf_counter() - start
    executed = out / "executed" / job.learner / job.course.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(plan.notebook, executed)


async def grade_all(jobs: list[Job], root: Path, out: Path, options: argparse.Namespace) -> None:
    gate = asyncio.Semaphore(options.jobs)

    async def one(job):
        async with gate:
            try:
                await grade_job(job, root, out, options)
            except Exception as error:  # never let one submission stop the others
                job.results = [
                    Result(job.learner, job.course.name, e.number, e.title, COULD_NOT_RUN, f"grader error: {error!r}")
                    for e in job.course.exercises
                ]
            counts = Counter(r.status for r in job.results)
            print(
                f"  {job.learner} / {job.course.number}: "
                + ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
                + f" ({job.seconds:.1f} s)",
                flush=True,
            )

    await asyncio.gather(*(one(job) for job in jobs))


def missing_notebooks(learners: list[str], jobs: list[Job], course: dict[str, CourseNotebook]) -> list[Result]:
    """Rows "not written" for the notebooks that some learners submitted and others did not."""
    numbers = sorted({job.course.number for job in jobs})
    have = {(job.learner, job.course.number) for job in jobs}
    return [
        Result(learner, course[n].name, e.number, e.title, NOT_WRITTEN, f"no notebook {n} in {learner}'s folder")
        for learner in learners
        for n in numbers
        if (learner, n) not in have
        for e in course[n].exercises
    ]


def grade(root: Path, out: Path, options: argparse.Namespace, course: dict[str, CourseNotebook] | None = None):
    """Grade every submission in `root`; write OUT's files; return the results, sorted."""
    course = course or load_course()
    learners, jobs, problems = find_jobs(root, course)
    asyncio.run(grade_all(jobs, root, out, options))
    results = [r for job in jobs for r in job.results] + missing_notebooks(learners, jobs, course)
    results.sort(key=lambda r: (r.learner, r.exercise is None, r.exercise or 0, r.notebook))
    return results + problems


# --- writing the results --------------------------------------------------------------------------------


def write_csv(results: list[Result], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        writer.writerows([*r.row(), r.status, r.message] for r in results)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; } table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
.passed { background: #c8e6c9; } .failed { background: #ffcdd2; } .not-written { background: #eeeeee; }
.could-not-run { background: #ffe0b2; } td.mark { text-align: center; } .message { font-family: monospace; }
"""
MARKS = {PASSED: "✓", FAILED: "✗", NOT_WRITTEN: "–", COULD_NOT_RUN: "!"}


def css(status: str) -> str:
    return status.replace(" ", "-")


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def legend() -> str:
    return " ".join(f'<span class="{css(s)}">&nbsp;{MARKS[s]} {s}&nbsp;</span>' for s in STATUSES)


def feedback_name(learner: str) -> str:
    return re.sub(r"[^\w.-]", "_", learner) + ".html"


def summary(results: list[Result]) -> list[tuple[int, str, Counter, str]]:
    """Per exercise: (number, title, counts by status, the most common "failed" message and its count)."""
    graded = [r for r in results if r.exercise is not None]
    rows = []
    for number in sorted({r.exercise for r in graded}):
        mine = [r for r in graded if r.exercise == number]
        mistakes = Counter(r.message for r in mine if r.status == FAILED).most_common(1)
        common = f"{mistakes[0][0]} (×{mistakes[0][1]})" if mistakes else "—"
        rows.append((number, mine[0].title, Counter(r.status for r in mine), common))
    return rows


def write_report(results: list[Result], path: Path, seconds: float, full: bool) -> None:
    """report.html: the learner x exercise table, the summary per exercise, the files not graded."""
    esc = html.escape
    graded = [r for r in results if r.exercise is not None]
    numbers = sorted({r.exercise for r in graded})
    learners = sorted({r.learner for r in graded})
    cell = {(r.learner, r.exercise): r for r in graded}
    head = "".join(f"<th>{n}</th>" for n in numbers)
    rows = []
    for learner in learners:
        marks = []
        for n in numbers:
            r = cell.get((learner, n))
            marks.append(
                f'<td class="mark {css(r.status)}" title="{esc(r.message)}">{MARKS[r.status]}</td>'
                if r
                else "<td></td>"
            )
        link = f'<a href="feedback/{quote(feedback_name(learner))}">{esc(learner)}</a>'
        passed = sum(cell[(learner, n)].status == PASSED for n in numbers if (learner, n) in cell)
        rows.append(f"<tr><td>{link}</td>{''.join(marks)}<td>{passed}/{len(numbers)}</td></tr>")
    stats = summary(results)
    totals = "".join(f"<td>{s[2][PASSED]}</td>" for s in stats)
    rows.append(f"<tr><th>passed</th>{totals}<td></td></tr>")
    summary_rows = "".join(
        f"<tr><td>{n}</td><td>{esc(title)}</td><td>{c[PASSED]}/{sum(c.values())}</td><td>{c[FAILED]}</td>"
        f'<td>{c[NOT_WRITTEN]}</td><td>{c[COULD_NOT_RUN]}</td><td class="message">{esc(common)}</td></tr>'
        for n, title, c, common in stats
    )
    problems = [r for r in results if r.exercise is None]
    problem_items = "".join(
        f'<li>{esc(r.learner or "(no learner)")}: <span class="message">{esc(r.message)}</span></li>' for r in problems
    )
    counts = Counter(r.status for r in graded)
    body = (
        f"<p>{len(learners)} learners, {len(graded)} exercise results in {seconds:.0f} s "
        f"({'every cell run' if full else 'fast mode: imports, exercises and checks only'}). "
        + ", ".join(f"{counts[s]} {s}" for s in STATUSES)
        + f".</p>\n<p>{legend()} (hover over a mark for its message)</p>\n"
        f"<table><tr><th>learner</th>{head}<th>passed</th></tr>\n" + "\n".join(rows) + "</table>\n"
        "<h2>Summary per exercise</h2>\n<table><tr><th>exercise</th><th>title</th><th>passed</th><th>failed</th>"
        "<th>not written</th><th>could not run</th><th>most common mistake</th></tr>\n" + summary_rows + "</table>\n"
    )
    if problems:
        body += f"<h2>Files not graded</h2>\n<ul>{problem_items}</ul>\n"
    path.write_text(page("Grades", body), encoding="utf-8")


def write_feedback(results: list[Result], folder: Path) -> None:
    """feedback/<learner>.html: each exercise's status and message, then the learner's files not graded."""
    esc = html.escape
    folder.mkdir(parents=True, exist_ok=True)
    for learner in sorted({r.learner for r in results if r.learner}):
        mine = [r for r in results if r.learner == learner]
        rows = "".join(
            f'<tr class="{css(r.status)}"><td>{r.exercise}</td><td>{esc(r.title)}</td><td>{r.status}</td>'
            f'<td class="message">{esc(r.message)}</td></tr>'
            for r in mine
            if r.exercise is not None
        )
        others = "".join(f'<li class="message">{esc(r.message)}</li>' for r in mine if r.exercise is None)
        passed = sum(r.status == PASSED for r in mine if r.exercise is not None)
        body = (
            f"<p>{passed} of {sum(r.exercise is not None for r in mine)} exercises passed their self-check.</p>\n"
            "<table><tr><th>exercise</th><th>title</th><th>status</th><th>message</th></tr>\n" + rows + "</table>\n"
        )
        if others:
            body += f"<h2>Files not graded</h2>\n<ul>{others}</ul>\n"
        (folder / feedback_name(learner)).write_text(page(f"Feedback for {learner}", body), encoding="utf-8")


# --- command line ---------------------------------------------------------------------------------------


def positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    layout = __doc__[__doc__.index("Layout. ") : __doc__.index("Trustworthy grading.")]
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.grade",
        description=__doc__.splitlines()[0] + "\n\n" + layout + "Output: grades.csv, report.html, feedback/ in OUT.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submissions", type=Path, help="a folder of learner folders: SUBMISSIONS/<learner>/*.ipynb")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "grade", help="default: build/grade")
    parser.add_argument(
        "--timeout",
        type=positive(float),
        help=f"seconds per notebook (default {FAST_TIMEOUT_S}, {FULL_TIMEOUT_S} with --full)",
    )
    parser.add_argument("--full", action="store_true", help="run every cell, not only imports, exercises and checks")
    parser.add_argument(
        "--memory-limit",
        type=positive(float),
        default=MEMORY_LIMIT_GB,
        help=f"GB per kernel (default {MEMORY_LIMIT_GB:g})",
    )
    parser.add_argument("--jobs", type=positive(int), default=JOBS, help=f"notebooks at a time (default {JOBS})")
    parser.add_argument(
        "--notebooks", type=Path, default=NOTEBOOK_DIR, help="the course notebooks (default notebooks/)"
    )
    return parser


def main(argv: list[str] | None = None) -> list[Result]:
    options = parser().parse_args(argv)
    root = options.submissions
    if not root.is_dir():
        parser().error(f"SUBMISSIONS {root} is not a folder")
    options.timeout = options.timeout or (FULL_TIMEOUT_S if options.full else FAST_TIMEOUT_S)
    options.cwd = options.notebooks
    try:
        course = load_course(options.notebooks)
    except (FileNotFoundError, SolutionMarkerError) as error:
        parser().error(str(error))
    start = time.perf_counter()
    results = grade(root, options.out, options, course)
    if not results:
        parser().error(f"nothing to grade in {root}: the layout is SUBMISSIONS/<learner>/NN_*.ipynb")
    seconds = time.perf_counter() - start
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    write_csv(results, out / "grades.csv")
    write_report(results, out / "report.html", seconds, options.full)
    write_feedback(results, out / "feedback")
    graded = [r for r in results if r.exercise is not None]
    counts = Counter(r.status for r in graded)
    learners = len({r.learner for r in graded})
    problems = len(results) - len(graded)
    print(
        f"graded {learners} learners, {len(graded)} exercises in {seconds:.0f} s: "
        + ", ".join(f"{counts[s]} {s}" for s in STATUSES)
        + (f"; {problems} files not graded" if problems else "")
    )
    for name in ("grades.csv", "report.html", "feedback/", "executed/"):
        print(f"  {relative(out.resolve() / name, Path.cwd().resolve())}")
    return results


if __name__ == "__main__":
    main()
