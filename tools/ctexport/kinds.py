"""Layer kinds and the words that name them in messages.

Every source (module, whole model, TorchScript, state_dict) refuses a layer
that is not a ConvTranspose with the same wording, so that a user sees at
once what the layer is.
"""

TRANSPOSED = "transposed"
REGULAR = "regular"


class ExportError(Exception):
    """A checkpoint or layer that cannot be exported; the message says why."""


def transposed_name(dims):
    return f"ConvTranspose{dims}d"


def regular_name(dims):
    return f"Conv{dims}d"


def label(name):
    """How a layer is named in messages ("" is a state_dict's top level,
    None a module given on its own)."""
    if name is None:
        return "the module"
    return f"layer {name!r}" if name else "the top-level layer"


def not_transposed(name, dims, cls=None):
    """'layer 'x' is a Conv1d (regular convolution), not a ConvTranspose1d'.

    `cls` is the module's class name when it is a subclass of Conv1d/2d/3d.
    """
    regular = regular_name(dims)
    what = regular if cls in (None, regular) else f"{cls} (a {regular})"
    return (f"{label(name)} is a {what} (regular convolution), not a "
            f"{transposed_name(dims)}")


def not_a_layer(name, cls):
    return (f"{label(name)} is a {cls}, not a ConvTranspose1d, 2d or 3d "
            "layer")


def name_list(names, limit=8):
    """Names joined with commas, at most `limit` of them (messages are one
    line)."""
    names = list(names)
    if not names:
        return "none"
    shown = ", ".join(n or "(top level)" for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names)} in all)"
    return shown
