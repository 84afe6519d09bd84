"""The release gate's signature rule: what breaks production's callers and what does not."""

from __future__ import annotations

from modelport.deploy.gate import compatibility
from modelport.runtimes.signature import Signature, SignatureKind, TensorSpec


def _columns(*specs: TensorSpec, outputs: tuple[TensorSpec, ...] = ()) -> Signature:
    return Signature(SignatureKind.COLUMNS, specs, outputs)


AGE = TensorSpec("age", "int64", (-1,))
CITY = TensorSpec("city", "string", (-1,))
LABEL = TensorSpec("label", "int64", (-1,))
PROBS = TensorSpec("probabilities", "float64", (-1, 3))


def test_the_same_signature_and_an_added_output_are_compatible() -> None:
    old = _columns(AGE, CITY, outputs=(LABEL,))
    assert compatibility(old, old).compatible
    wider = compatibility(old, _columns(AGE, CITY, outputs=(LABEL, PROBS)))
    assert wider.compatible
    assert wider.notes == ("output 'probabilities' added",)


def test_widening_dtypes_is_compatible_and_narrowing_kinds_is_not() -> None:
    as_float = TensorSpec("age", "float32", (-1,))
    assert compatibility(_columns(AGE), _columns(as_float)).compatible
    result = compatibility(_columns(as_float), _columns(AGE))
    assert result.breaking == (
        "input 'age' was float32, is int64: float32 values cannot be cast to int64",
    )
    to_text = compatibility(_columns(AGE), _columns(TensorSpec("age", "string", (-1,))))
    assert not to_text.compatible


def test_inputs_added_or_removed_and_outputs_removed_break() -> None:
    result = compatibility(
        _columns(AGE, CITY, outputs=(LABEL, PROBS)),
        _columns(AGE, TensorSpec("income", "float64", (-1,)), outputs=(LABEL,)),
    )
    assert result.breaking == (
        "input 'city' removed: callers send it and it would be refused",
        "output 'probabilities' removed: callers read it",
        "required input 'income' added: callers do not send it",
    )


def test_shape_kind_and_missing_values_changes_break() -> None:
    four = Signature(SignatureKind.TENSOR, (TensorSpec("input", "float64", (-1, 4)),))
    five = Signature(SignatureKind.TENSOR, (TensorSpec("input", "float64", (-1, 5)),))
    assert compatibility(four, five).breaking == ("input 'input' takes shape [N, 5], was [N, 4]",)
    assert "inputs change from tensor to columns" in compatibility(four, _columns(AGE)).breaking[0]
    nullable = TensorSpec("age", "float64", (-1,), nullable=True)
    strict = TensorSpec("age", "float64", (-1,))
    assert compatibility(_columns(nullable), _columns(strict)).breaking == (
        "input 'age' no longer accepts missing values",
    )
    assert compatibility(_columns(strict), _columns(nullable)).compatible
