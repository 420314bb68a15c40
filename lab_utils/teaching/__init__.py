"""The course around the code: self-checks, student notebooks, the grader."""
