"""Rollouts: deployments (named endpoints with weighted, sticky, shadowed slots), their
stored history, and the controller that ramps canaries behind SLO gates and rolls back."""
