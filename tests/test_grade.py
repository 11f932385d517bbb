"""course_utils.grade: submissions graded from the pristine self-checks, never from what a
submission claims; every bad file reported, never a crash.

The kernel-running tests use notebook 1 (its check takes a second): one batch of learners, each
one scenario (right, wrong, not written, tampered in each way, broken, too much memory), plus a
run with a short time-out. The slow tests (`make unit` leaves them out) grade a generated class of
thirty learners on notebooks 1 to 5, printing the time it took, and notebook 6 without its download.
"""

import copy
import csv
import html
import os
import random
import time

import nbformat
import pytest

from course_utils import grade
from course_utils.paths import NOTEBOOK_DIR

TICK = "✓ mask_to_box: all 5 test masks give the right box."
WRONG = (
    "def mask_to_box(mask):\n    rows, cols = torch.where((mask != 0) & (mask != 255))\n"
    "    return torch.stack([rows.min(), cols.min(), rows.max(), cols.max()])"
)
SWAPPED = "x and y are swapped"


@pytest.fixture(scope="module")
def course():
    return grade.load_course()


def solutions(number):
    """{cell id: source} of the solution cells of a course notebook (notebooks/NN_*.ipynb)."""
    path = next(NOTEBOOK_DIR.glob(f"{number}_*.ipynb"))
    return {c.id: c.source for c in nbformat.read(path, 4).cells if "solution" in c.metadata.get("tags", [])}


def student(course, number="01"):
    return copy.deepcopy(course[number].student)


def cell(notebook, cell_id):
    return next(c for c in notebook.cells if c.id == cell_id)


def answered(course, source=None, number="01"):
    """Notebook `number` as a learner would hand it in, with `source` in its (only) exercise cell;
    None: the right answer."""
    notebook = student(course, number)
    (exercise,) = course[number].exercises
    (solution_id,) = exercise.solution_ids
    cell(notebook, solution_id).source = solutions(number)[solution_id] if source is None else source
    return notebook


def save(notebook, root, learner, name):
    path = root / learner / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def rows(out):
    with (out / "grades.csv").open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def by_learner(table):
    return {(r["learner"], r["exercise"]): r for r in table}


# --- without a kernel -----------------------------------------------------------------------------------


def test_the_check_is_called_through_the_module():
    assert grade.protected_check("check_mask_to_box(mask_to_box)") == (
        "__import__('course_utils.checks').checks.check_mask_to_box(mask_to_box)"
    )
    assert grade.protected_check("check_training_step(train_step, evaluate)").endswith(
        ".checks.check_training_step(train_step, evaluate)"
    )


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import torch\nfrom x import (a,\n    b)", True),
        ("import torch\nprint(torch)", False),
        ("%matplotlib inline\nimport torch", False),
        ("", False),
    ],
)
def test_import_cells(source, expected):
    assert grade.is_import_cell(source) is expected


def test_course_exercises_are_numbered_through_the_course(course):
    numbers = [e.number for notebook in course.values() for e in notebook.exercises]
    assert numbers == list(range(1, 13))
    assert [len(course[n].exercises) for n in sorted(course)] == [1, 2, 2, 3, 3, 1]


def test_every_notebook_needs_only_its_import_cells_before_the_exercises(course):
    """Fast mode skips every other cell: no solution or check reads a name bound by one of them."""
    from course_utils.student import cell_names

    for notebook in course.values():
        skipped = set()
        for c in notebook.student.cells:
            if c.cell_type != "code":
                continue
            read, bound = cell_names(c.source)
            if grade.is_import_cell(c.source):
                continue
            if {"solution", "self-check"} & set(c.metadata.get("tags", [])):
                assert not read & skipped, f"{notebook.name}: {c.id} reads {read & skipped}"
            else:
                skipped |= bound


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not json at all", "is not JSON"),
        (b"\xff\xfe\x00binary", "not a text file"),
        (b'{"cells": "none", "nbformat": 4}', "JSON but not a Jupyter notebook"),
        (b"[1, 2, 3]", "JSON but not a Jupyter notebook"),
        (b'{"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "not a valid"),
    ],
)
def test_malformed_files_are_named_with_their_problem(tmp_path, content, message):
    path = tmp_path / "01_x.ipynb"
    path.write_bytes(content)
    with pytest.raises(grade.SubmissionError, match=message) as info:
        grade.read_submission(path, "ada/01_x.ipynb")
    assert str(info.value).startswith("ada/01_x.ipynb ")


def test_a_notebook_without_cell_ids_is_reported(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    notebook.nbformat_minor = 4
    del notebook.cells[0]["id"]
    path = tmp_path / "01_x.ipynb"
    path.write_text(nbformat.writes(notebook, version=4), encoding="utf-8")
    with pytest.raises(grade.SubmissionError, match="has no cell ids"):
        grade.read_submission(path, "01_x.ipynb")


def test_added_cells_keep_their_place_and_the_rest_is_pristine(course):
    notebook = answered(course, WRONG)
    (exercise,) = course["01"].exercises
    check_at = next(i for i, c in enumerate(notebook.cells) if c.id == exercise.check_id)
    notebook.cells[check_at].source = f"print({TICK!r})"  # tampered: ignored
    notebook.cells.insert(check_at, nbformat.v4.new_code_cell("helper = 1"))  # added before the check
    notebook.cells.insert(0, nbformat.v4.new_code_cell("first = 1"))
    notebook.cells[2].source = "import os"  # an edited course cell: ignored
    plan = grade.graded_notebook(course["01"], notebook, "ada/01.ipynb")
    sources = [c.source for c in plan.notebook.cells]
    pristine = course["01"].student.cells
    assert sources[0] == "first = 1" and plan.roles[0] == grade.ADDED
    assert sources[plan.index(exercise.solution_ids[0])] == WRONG
    check = plan.index(exercise.check_id)
    assert sources[check - 1] == "helper = 1" and plan.roles[check - 1] == grade.ADDED
    assert sources[check] == "__import__('course_utils.checks').checks.check_mask_to_box(mask_to_box)"
    assert [c.source for c in plan.notebook.cells if c.cell_type == "markdown"] == [
        c.source for c in pristine if c.cell_type == "markdown"
    ]
    assert sources[plan.index(pristine[1].id)] == pristine[1].source
    run = grade.cells_to_run(plan, full=False)
    assert {plan.roles[i] for i in run} == {grade.ADDED, grade.SETUP, grade.SOLUTION, grade.CHECK}
    assert max(run) == check
    assert len(grade.cells_to_run(plan, full=True)) > len(run)


def test_another_courses_notebook_is_reported(course):
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    with pytest.raises(grade.SubmissionError, match="none of its cells is one of notebook 01's"):
        grade.graded_notebook(course["01"], other, "ada/01_x.ipynb")


def executed(course, *outputs):
    """A plan for notebook 1 whose check cell 'printed' `outputs` (nbformat outputs)."""
    plan = grade.graded_notebook(course["01"], answered(course), "x")
    plan.notebook.cells[plan.index(course["01"].exercises[0].check_id)].outputs = list(outputs)
    return plan


def out(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def error(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])


@pytest.mark.parametrize(
    "outputs, status, message",
    [
        ([out(TICK + "\n")], "passed", TICK),
        ([out("debug (3, 4)\n"), out(TICK + "\n")], "passed", TICK),  # the learner's own prints are allowed
        ([out("✓ fake\n"), out(TICK + "\n")], "failed", "reported no pass"),  # two ✓ lines
        ([out(TICK + "\nmore\n")], "failed", "reported no pass"),  # the ✓ line is not the last
        ([], "failed", "printed: nothing"),
        ([out(TICK + "\n"), error("SelfCheckError", "mask_to_box: wrong")], "failed", "mask_to_box: wrong"),
        ([error("SelfCheckError", "mask_to_box: not written yet: replace")], "not written", "not written yet"),
        ([error("NameError", "name 'mask_to_box' is not defined")], "could not run", "the check raised NameError"),
    ],
)
def test_judging_a_check_cell(course, outputs, status, message):
    plan = executed(course, *outputs)
    got_status, got_message = grade.judge(plan, course["01"].exercises[0], None)
    assert got_status == status and message in got_message


def test_a_stop_before_the_check_is_could_not_run(course):
    plan = executed(course, out(TICK + "\n"))
    check = plan.index(course["01"].exercises[0].check_id)
    status, message = grade.judge(plan, course["01"].exercises[0], grade.Stop(check, "time-out after 3 s"))
    assert (status, message) == ("could not run", "time-out after 3 s (in the check of exercise 1)")
    assert grade.judge(plan, course["01"].exercises[0], grade.Stop(check + 1, "time-out"))[0] == "passed"


def test_command_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        grade.main([str(tmp_path / "nowhere")])
    assert info.value.code == 2 and "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grade.main([str(tmp_path), "--timeout", "0"])
    assert "must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grade.main([str(tmp_path), "--out", str(tmp_path / "out")])
    assert "nothing to grade" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grade.main([str(tmp_path), "--notebooks", str(tmp_path)])
    assert "no course notebooks with exercises in" in capsys.readouterr().err
    help_text = grade.parser().format_help()
    assert "SUBMISSIONS/<learner>" in help_text and "ada/01_classification_detection_segmentation.ipynb" in help_text


# --- graded in kernels ----------------------------------------------------------------------------------


def scenarios(course):
    """{learner: (notebook to hand in, or bytes for a broken file; expected status; part of the message)}."""
    (exercise,) = course["01"].exercises
    stub = cell(course["01"].student, exercise.solution_ids[0]).source

    def edited(notebook, check=None, delete_check=False, added_before_solution=None):
        index = next(i for i, c in enumerate(notebook.cells) if c.id == exercise.check_id)
        if check is not None:
            notebook.cells[index].source = check
        if delete_check:
            del notebook.cells[index]
        if added_before_solution:
            at = next(i for i, c in enumerate(notebook.cells) if c.id == exercise.solution_ids[0])
            notebook.cells.insert(at, nbformat.v4.new_code_cell(added_before_solution))
        return notebook

    no_solution = student(course)
    no_solution.cells = [c for c in no_solution.cells if c.id != exercise.solution_ids[0]]
    fake_pass = '__import__("course_utils.checks").checks._common._Exercise("mask_to_box").passed("all 5 test masks")'
    other_course = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('another course')")])
    return {
        "right": (answered(course), "passed", TICK),
        "wrong": (answered(course, WRONG), "failed", SWAPPED),
        "stub": (student(course), "not written", "not written yet"),
        "check_prints_tick": (edited(student(course), check=f"print({TICK!r})"), "not written", "not written yet"),
        "check_deleted": (edited(answered(course, WRONG), delete_check=True), "failed", SWAPPED),
        "check_calls_passed": (edited(student(course), check=fake_pass), "not written", "not written yet"),
        "tick_in_solution": (answered(course, f"{stub}\nprint({TICK!r})"), "not written", "not written yet"),
        "shadowing_def": (
            answered(course, f"{WRONG}\n\ndef check_mask_to_box(f):\n    print({TICK!r})"),
            "failed",
            SWAPPED,
        ),
        "helper_and_debug_print": (
            edited(
                answered(
                    course,
                    "def mask_to_box(mask):\n    print('debugging', mask.shape)\n    return corners(mask)",
                ),
                added_before_solution=(
                    "def corners(mask):\n    rows, cols = torch.where((mask != 0) & (mask != 255))\n"
                    "    return torch.stack([cols.min(), rows.min(), cols.max(), rows.max()])"
                ),
            ),
            "passed",
            TICK,
        ),
        "syntax_error": (
            answered(course, "def mask_to_box(mask):\n    return ("),
            "could not run",
            "the cell of exercise 1 raised SyntaxError",
        ),
        "cell_deleted": (no_solution, "not written", "deleted?"),
        "html_in_message": (
            answered(course, "def mask_to_box(mask):\n    raise ValueError('<script>alert(1)</script>')"),
            "failed",
            "your code raised ValueError: <script>alert(1)</script>",
        ),
        "huge_allocation": (
            answered(course, "chunks = [b'x' * 10**8 for _ in range(150)]\n" + WRONG),
            "could not run",
            "memory limit: above 2.0 GB (in the cell of exercise 1)",
        ),
        "not_json": (b"{ this is not json", "could not run", "is not JSON"),
        "not_a_notebook": (b'{"name": "a json file"}', "could not run", "JSON but not a Jupyter notebook"),
        "other_course": (other_course, "could not run", "none of its cells is one of notebook 01's"),
        # the Korean edition's student notebook (notebooks/ko/, the same cell ids and code)
        "korean_right": (korean(answered(course)), "passed", TICK),
        "korean_stub": (korean(student(course)), "not written", "not written yet"),
    }


def korean(english):
    """`english` (a notebook 1 as handed in) as a learner of the Korean edition would hand it in: the
    Korean student notebook with the same exercise cell."""
    notebook = copy.deepcopy(grade.load_course(NOTEBOOK_DIR / "ko")["01"].student)
    solutions = {c.id: c.source for c in english.cells if "solution" in c.metadata.get("tags", [])}
    for c in notebook.cells:
        if c.id in solutions:
            c.source = solutions[c.id]
    assert notebook.metadata["language"] == "ko" and 'set_language("ko")' in notebook.cells[1].source
    return notebook


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    """The batch of scenarios, graded once: (submissions folder, out folder, rows, seconds)."""
    root, out = tmp_path_factory.mktemp("submissions"), tmp_path_factory.mktemp("grade")
    for learner, (content, _, _) in scenarios(course).items():
        if isinstance(content, bytes):
            (root / learner).mkdir()
            (root / learner / course["01"].name).write_bytes(content)
        else:
            save(content, root, learner, course["01"].name)
    save(answered(course), root, "renamed", "homework.ipynb")  # no course number: not graded, but named
    nbformat.write(answered(course), root / "stray.ipynb")  # not in a learner's folder
    start = time.perf_counter()
    grade.main([str(root), "--out", str(out), "--memory-limit", "2", "--timeout", "120"])
    return root, out, rows(out), time.perf_counter() - start


def test_each_scenario_gets_its_status_and_message(course, graded):
    _, _, table, _ = graded
    found = by_learner(table)
    for learner, (_, status, message) in scenarios(course).items():
        row = found[(learner, "1")]
        assert (row["status"], row["notebook"]) == (status, course["01"].name), (learner, row)
        assert message in row["message"], (learner, row["message"])
        assert row["title"] == "From a mask to a box"


def test_files_that_are_not_graded_are_reported(course, graded):
    _, _, table, _ = graded
    problems = {r["notebook"]: r for r in table if r["exercise"] == ""}
    assert set(problems) == {"renamed/homework.ipynb", "stray.ipynb"}
    assert "unknown file name" in problems["renamed/homework.ipynb"]["message"]
    assert f"rename it {course['01'].name}" in problems["renamed/homework.ipynb"]["message"]
    assert "not in a learner's folder" in problems["stray.ipynb"]["message"]
    missing = by_learner(table)[("renamed", "1")]
    assert (missing["status"], missing["message"]) == ("not written", "no notebook 01 in renamed's folder")


def test_the_report_has_the_table_the_summary_and_escaped_messages(course, graded):
    _, out, table, _ = graded
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Summary per exercise</h2>" in report
    assert (
        "<td>3/19</td>" in report
    )  # exercise 1: 3 of 19 learners passed (right, helper_and_debug_print, korean_right)
    mistake = by_learner(table)[("wrong", "1")]["message"]
    assert f"{html.escape(mistake)} (×3)" in report  # the most common mistake: wrong, check_deleted, shadowing_def
    assert "<script>" not in report and "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert report.count('class="mark passed"') == 3 and "Files not graded" in report
    feedback = (out / "feedback" / "html_in_message.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;" in feedback and "<script>" not in feedback
    assert 'href="feedback/check_prints_tick.html"' in report
    assert (out / "executed" / "right" / course["01"].name).exists()


def test_fast_mode_skips_the_figures_and_the_rest(course, graded):
    _, out, _, _ = graded
    executed_notebook = nbformat.read(out / "executed" / "right" / course["01"].name, 4)
    ran = [c for c in executed_notebook.cells if c.cell_type == "code" and c.execution_count]
    assert len(ran) == 3  # the imports, the exercise, its check
    assert not any("image/png" in o.get("data", {}) for c in executed_notebook.cells for o in c.get("outputs", []))


def two_exercise_course(course, folder):
    """Notebook 1 with its exercise twice (Exercise 1 and Exercise 2), in `folder`."""
    notebook = nbformat.read(NOTEBOOK_DIR / course["01"].name, 4)
    (exercise,) = course["01"].exercises
    at = next(i for i, c in enumerate(notebook.cells) if c.id == exercise.check_id)
    again = [copy.deepcopy(cell(notebook, cell_id)) for cell_id in (exercise.solution_ids[0], exercise.check_id)]
    for c, new_id in zip(again, ("again-solution", "again-check")):
        c.id = new_id
    heading = nbformat.v4.new_markdown_cell("## Exercise 2 · Again")
    notebook.cells[at + 1 : at + 1] = [heading, *again]
    folder.mkdir()
    nbformat.write(notebook, folder / course["01"].name)
    return folder


def test_a_time_out_stops_that_notebook_and_keeps_the_exercises_checked_before(course, tmp_path):
    notebooks = two_exercise_course(course, tmp_path / "course")
    submission = nbformat.read(notebooks / course["01"].name, 4)  # the solutions, then a loop in exercise 2
    cell(submission, "again-solution").source = "while True:\n    pass"
    save(submission, tmp_path / "subs", "looper", course["01"].name)
    start = time.perf_counter()
    args = [str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--timeout", "20", "--notebooks", str(notebooks)]
    grade.main(args)
    assert time.perf_counter() - start < 60
    found = by_learner(rows(tmp_path / "out"))
    assert found[("looper", "1")]["status"] == "passed"
    assert (found[("looper", "2")]["status"], found[("looper", "2")]["message"]) == (
        "could not run",
        "time-out after 20 s (in the cell of exercise 2)",
    )


# --- a class of thirty (slow) ---------------------------------------------------------------------------

#: A typical mistake per exercise: (the right solution's text, what the learner wrote instead).
MISTAKES = {
    1: ("cols.min(), rows.min(), cols.max(), rows.max()", "rows.min(), cols.min(), rows.max(), cols.max()"),
    2: ("self.block5 = nn.Sequential(*conv_bn_relu(c4, c4), *conv_bn_relu(c4, c4))", "self.block5 = nn.Identity()"),
    3: ("field += (kernel - 1) * jump", "field += kernel - 1"),
    4: ("pooled = F.max_pool2d(features, kernel_size=2)", "pooled = features"),
    5: ("optimizer.zero_grad()", "pass"),
    6: ("conv.bias.copy_(fc.bias)", "pass"),
    7: ("conv.bias.copy_(fc.bias)", "pass"),
    8: ("target[scored] * num_classes + predicted[scored]", "predicted[scored] * num_classes + target[scored]"),
    9: ("(factor - 0.5)", "factor"),
    10: ("return padding, 2 * padding - excess", "return excess // 2, 0"),
    11: (
        "scores = scores[..., offset : offset + height, offset : offset + width]",
        "scores = scores[..., :height, :width]",
    ),
}


def make_class(course, root, learners=30, seed=0):
    """Write `learners` folders of notebooks 1-5 into `root`: each exercise right, wrong (MISTAKES),
    not written, or broken (a syntax error); every seventh learner's notebook 2 is not JSON. Return
    {(learner, exercise number): the expected status}."""
    rng = random.Random(seed)
    expected = {}
    for k in range(learners):
        learner = f"learner{k:02d}"
        for number in ("01", "02", "03", "04", "05"):
            notebook, right = student(course, number), solutions(number)
            if number == "02" and k % 7 == 3:
                (root / learner).mkdir(parents=True, exist_ok=True)
                (root / learner / course[number].name).write_text("not json", encoding="utf-8")
                expected |= {(learner, e.number): "could not run" for e in course[number].exercises}
                continue
            for exercise in course[number].exercises:
                (solution_id,) = exercise.solution_ids
                kind = rng.choices(["right", "wrong", "stub", "broken"], weights=[5, 3, 1, 1])[0]
                source = right[solution_id]
                if kind == "wrong":
                    old, new = MISTAKES[exercise.number]
                    assert old in source, f"exercise {exercise.number}'s solution changed: update MISTAKES"
                    source = source.replace(old, new)
                elif kind == "stub":
                    source = cell(notebook, solution_id).source
                elif kind == "broken":
                    source = source.replace("def ", "def (", 1).replace("class ", "class (", 1)
                cell(notebook, solution_id).source = source
                status = {"right": "passed", "wrong": "failed", "stub": "not written", "broken": "could not run"}
                expected[(learner, exercise.number)] = status[kind]
            save(notebook, root, learner, course[number].name)
    return expected


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("FCN_GRADE_CLASS_OF_THIRTY") != "1",
    reason="a 9-minute measurement (30 learners x notebooks 1-5): run it with FCN_GRADE_CLASS_OF_THIRTY=1",
)
def test_a_class_of_thirty_is_graded_in_fast_mode_without_checkpoints(course, tmp_path, monkeypatch, capsys):
    """Every right answer passes, every mistake fails, each broken file is reported; no checkpoint
    is read or written (an empty checkpoint folder stays empty). Prints the time it took."""
    checkpoints = tmp_path / "no-checkpoints"
    checkpoints.mkdir()
    monkeypatch.setenv("FCN_COURSE_CHECKPOINTS", str(checkpoints))
    expected = make_class(course, tmp_path / "class")
    start = time.perf_counter()
    grade.main([str(tmp_path / "class"), "--out", str(tmp_path / "out")])
    seconds = time.perf_counter() - start
    got = {(r["learner"], int(r["exercise"])): r for r in rows(tmp_path / "out")}
    wrong = {key: (status, got[key]["status"], got[key]["message"]) for key, status in expected.items()}
    assert {key: v for key, v in wrong.items() if v[0] != v[1]} == {}
    assert list(checkpoints.iterdir()) == []
    with capsys.disabled():
        print(f"\ngraded 30 learners x notebooks 1-5 (150 notebooks, 330 exercises) in {seconds:.0f} s")


@pytest.mark.slow
def test_notebook_6_is_graded_without_its_download(course, tmp_path):
    save(answered(course, None, "06"), tmp_path / "subs", "right", course["06"].name)
    save(student(course, "06"), tmp_path / "subs", "stub", course["06"].name)
    grade.main([str(tmp_path / "subs"), "--out", str(tmp_path / "out")])
    found = by_learner(rows(tmp_path / "out"))
    assert found[("right", "12")]["status"] == "passed" and found[("stub", "12")]["status"] == "not written"


def test_the_generator_writes_what_it_promises(course, tmp_path):
    expected = make_class(course, tmp_path, learners=4)
    assert len(expected) == 4 * 11 and set(expected.values()) <= set(grade.STATUSES)
    assert len(list(tmp_path.glob("*/*.ipynb"))) == 4 * 5


@pytest.mark.slow
def test_full_mode_runs_every_cell(course, tmp_path):
    save(answered(course), tmp_path / "subs", "right", course["01"].name)
    grade.main([str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--full"])
    assert by_learner(rows(tmp_path / "out"))[("right", "1")]["status"] == "passed"
    executed_notebook = nbformat.read(tmp_path / "out" / "executed" / "right" / course["01"].name, 4)
    code = [c for c in executed_notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code) and not any(grade.first_error(c) for c in code)
