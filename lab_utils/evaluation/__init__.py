"""What came out: per-group metrics with intervals, threshold-free views, seed summaries, reports and figures."""
