"""A/B experiments on deployments: a deployment's traffic split assigns each unit to a variant,
and the statistics decide whether the treatment moved a metric against the control. The
analysis engine is in `analysis`: pure functions over numpy arrays and counts (tests, intervals,
sequential monitoring, sample-ratio checks, multiple-testing corrections and planning), with no
server, database or model behind them, so a report, the CLI and a notebook compute the same
figures."""
