"""Argument checks shared by the loss constructors (``ValueError`` naming the argument and the value)."""

import numbers


def check_fraction(name, value):
    """``float(value)`` if it is a number in ``[0, 1]``, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1]; received {value!r}.")
    return float(value)


def check_non_negative(name, value):
    """``float(value)`` if it is a number ``>= 0``, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative number; received {value!r}.")
    return float(value)


def check_positive(name, value):
    """``float(value)`` if it is a number ``> 0``, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
        raise ValueError(f"`{name}` must be a positive number; received {value!r}.")
    return float(value)
