"""Monitoring: the prediction log, reference profiles, drift statistics and model quality —
observers of the data plane and pure functions over what they record."""
