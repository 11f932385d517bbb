"""Publishing the course: the website (`make site`) and the lecture slides (`make slides`).

Not part of `course_utils`, which holds only what the notebooks teach and check. Both builds read
the committed notebooks with their stored outputs and execute nothing; the JavaScript they need
(MathJax, reveal.js, ...) comes from the npm registry once, pinned and checked (`vendor.py`), and is
copied into the built folder, so that the result opens with no network at all.
"""
