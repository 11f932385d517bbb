"""How fast and how well the course runs on this machine, beside the tools learners would use instead.

    python -m benchmarks            # make benchmark: the full run (see FULL in common.py)
    python -m benchmarks --quick    # a smoke test of every part, in a few minutes (QUICK)

It measures, on the machine it runs on:
  1. every notebook in a fresh kernel, cold and warm: wall seconds and peak memory (notebooks.py);
  2. the classifier's training speed, as a fraction of the machine's matmul speed (speed.py);
  3. the course models' quality on notebook 5's held-out scenes (quality.py);
  4. peers trained from random weights on the same scenes: for the course's wall-clock time, and
     a peer of the course's size and compute also for the course's number of steps (peers.py);
  5. learning curves: held-out mIoU against training seconds, up to several times the course's
     training time, so that each peer's curve can flatten (curves.py).
report.py turns a result into targets, markdown tables and the curves' figure; run.py runs it all;
cli.py is the command line. The shared pieces (progress log, configurations, the held-out scenes'
sizes) are in common.py, below every other module, so the package has no import loop.

Checkpoints go to a scratch folder, never to data/checkpoints/, so cold runs are really cold and
your own cache is left alone. The results go to data/benchmark.json (--quick: benchmark-quick.json)
and, as one JSON object, to the last line of stdout (progress goes to stderr); the curves' figure
goes next to the JSON (data/benchmark-curves.png). Run it on an otherwise idle machine.

Importing the package, or any of its modules, runs nothing: no clock starts, no model is built.
"""
