"""Layers of a TorchScript model (torch.jit.save of a scripted or traced one).

A loaded TorchScript module is a RecursiveScriptModule: its submodules keep
their parameters and `original_name` (the Python class name), but not
isinstance.  A scripted ConvTranspose keeps its hyper-parameters as
attributes (they are TorchScript constants); a traced one keeps them only
as the constant arguments of the aten::_convolution call in its graph.
"""

import zipfile

from ctexport.kinds import REGULAR, TRANSPOSED, ExportError

_PARAMS = ("stride", "padding", "output_padding", "dilation", "groups")

# aten::_convolution(input, weight, bias, stride, padding, dilation,
#                    transposed, output_padding, groups, ...)
_CONVOLUTION_ARGS = {"stride": 3, "padding": 4, "dilation": 5,
                     "transposed": 6, "output_padding": 7, "groups": 8}


def is_torchscript(path):
    """Whether `path` is a torch.jit.save archive (it has constants.pkl,
    which torch.save's zip archives lack)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return any(n == "constants.pkl" or n.endswith("/constants.pkl")
                       for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def kind(module):
    """(TRANSPOSED or REGULAR, dims) for a convolution submodule, else
    None.  The class name settles it; a scripted subclass of _ConvNd
    still carries `transposed`."""
    name = getattr(module, "original_name", "")
    # torch.nn.utils.parametrize renames the class of a module it
    # parametrizes (weight norm in the new form).
    name = name[len("Parametrized"):] if name.startswith("Parametrized") \
        else name
    for dims in (1, 2, 3):
        if name == f"ConvTranspose{dims}d":
            return TRANSPOSED, dims
        if name == f"Conv{dims}d":
            return REGULAR, dims
    try:
        transposed = module.transposed
        dims = len(module.kernel_size)
    except (AttributeError, RuntimeError, TypeError):
        return None
    if isinstance(transposed, bool) and dims in (1, 2, 3):
        return (TRANSPOSED if transposed else REGULAR), dims
    return None


def _constant(value):
    """The value of a graph input built from constants, or None."""
    node = value.node()
    if node.kind() == "prim::Constant":
        return value.toIValue()
    if node.kind() == "prim::ListConstruct":
        items = [_constant(v) for v in node.inputs()]
        return None if any(i is None for i in items) else items
    return None


def _from_graph(module):
    """Hyper-parameters from a traced module's single aten::_convolution."""
    try:
        nodes = [n for n in module.graph.nodes()
                 if n.kind() == "aten::_convolution"]
    except (AttributeError, RuntimeError):
        return None
    if len(nodes) != 1:
        return None
    inputs = list(nodes[0].inputs())
    hyper = {k: _constant(inputs[i]) for k, i in _CONVOLUTION_ARGS.items()}
    if any(v is None for v in hyper.values()) or hyper.pop("transposed") \
            is not True:
        return None
    return hyper


def hyper_parameters(module, name):
    """The hyper-parameters of the TorchScript ConvTranspose `module`."""
    try:
        hyper = {k: getattr(module, k) for k in _PARAMS}
        mode = module.padding_mode
    except (AttributeError, RuntimeError):
        hyper = _from_graph(module)
        mode = "zeros"
    if hyper is None:
        raise ExportError(f"TorchScript layer {name!r} keeps its "
                          "hyper-parameters neither as attributes nor in a "
                          "single convolution of its graph; export it from "
                          "the Python model or its state_dict instead")
    if mode != "zeros":
        raise ExportError(f"padding_mode={mode!r}: only 'zeros' is supported")
    return hyper
