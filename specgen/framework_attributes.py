"""The public attributes of the framework classes generated modules derive from.

Generated modules are ``torch.nn.Module`` and ``keras.layers.Layer`` subclasses (the whole model a
``keras.Model``) whose attributes are named after the spec's nodes and groups, so no spec name may
be one of these. The lists are written out because specgen imports no deep-learning framework;
``tests/test_names.py`` checks that they still cover ``dir()`` of the installed frameworks' classes
and of their instances, under both the TensorFlow and the PyTorch backend of Keras. Names that a
framework version drops stay listed, so a spec is valid or not whatever versions are installed.
"""

from __future__ import annotations

#: Public methods of torch.nn.Module.
TORCH_MODULE_METHODS = frozenset(
    {
        "add_module",
        "apply",
        "bfloat16",
        "buffers",
        "children",
        "compile",
        "cpu",
        "cuda",
        "double",
        "eval",
        "extra_repr",
        "float",
        "forward",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "ipu",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_module",
        "register_parameter",
        "register_state_dict_post_hook",
        "register_state_dict_pre_hook",
        "requires_grad_",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "type",
        "xpu",
        "zero_grad",
    }
)

#: Public attributes of torch.nn.Module.
TORCH_MODULE_ATTRIBUTES = frozenset(
    {
        "T_destination",
        "call_super_init",
        "dump_patches",
        "training",
    }
)

#: Public methods of keras.layers.Layer besides torch.nn.Module's (all of which it has under the
#: torch backend).
KERAS_LAYER_METHODS = frozenset(
    {
        "add_loss",
        "add_metric",
        "add_variable",
        "add_weight",
        "build",
        "build_from_config",
        "call",
        "compute_mask",
        "compute_output_shape",
        "compute_output_spec",
        "count_params",
        "from_config",
        "get_build_config",
        "get_config",
        "get_weights",
        "load_own_variables",
        "quantize",
        "quantized_build",
        "quantized_call",
        "rematerialized_call",
        "save_own_variables",
        "set_weights",
        "stateless_call",
        "symbolic_call",
    }
)

#: Public attributes of keras.layers.Layer besides torch.nn.Module's.
KERAS_LAYER_ATTRIBUTES = frozenset(
    {
        "activity_regularizer",
        "autocast",
        "built",
        "call_signature_parameters",
        "compute_dtype",
        "dtype",
        "dtype_policy",
        "input",
        "input_dtype",
        "input_spec",
        "losses",
        "metrics",
        "metrics_variables",
        "name",
        "non_trainable_variables",
        "non_trainable_weights",
        "output",
        "path",
        "quantization_mode",
        "supports_jit",
        "supports_masking",
        "torch_params",
        "trainable",
        "trainable_variables",
        "trainable_weights",
        "variable_dtype",
        "variables",
        "weights",
    }
)

#: Public methods of keras.Model (beyond keras.layers.Layer's).
KERAS_MODEL_METHODS = frozenset(
    {
        "compile_from_config",
        "compiled_loss",
        "compute_loss",
        "compute_metrics",
        "evaluate",
        "export",
        "fit",
        "get_compile_config",
        "get_layer",
        "get_metrics_result",
        "get_quantization_layer_structure",
        "get_state_tree",
        "load_weights",
        "loss",
        "make_predict_function",
        "make_test_function",
        "make_train_function",
        "predict",
        "predict_on_batch",
        "predict_step",
        "reset_metrics",
        "save",
        "save_weights",
        "set_state_tree",
        "stateless_compute_loss",
        "summary",
        "test_on_batch",
        "test_step",
        "to_json",
        "train_on_batch",
        "train_step",
    }
)

#: Public attributes of keras.Model (beyond keras.layers.Layer's).
KERAS_MODEL_ATTRIBUTES = frozenset(
    {
        "compiled",
        "compiled_metrics",
        "distribute_reduction_method",
        "distribute_strategy",
        "jit_compile",
        "layers",
        "metrics_names",
        "predict_function",
        "run_eagerly",
        "steps_per_execution",
        "test_function",
        "train_function",
        "unrolled_steps_per_execution",
    }
)


_OWNERS = (
    (TORCH_MODULE_METHODS, "torch.nn.Module method"),
    (TORCH_MODULE_ATTRIBUTES, "torch.nn.Module attribute"),
    (KERAS_LAYER_METHODS, "keras.layers.Layer method"),
    (KERAS_LAYER_ATTRIBUTES, "keras.layers.Layer attribute"),
    (KERAS_MODEL_METHODS, "keras.Model method"),
    (KERAS_MODEL_ATTRIBUTES, "keras.Model attribute"),
)

#: Every name above.
FRAMEWORK_ATTRIBUTES = frozenset().union(*(names for names, _ in _OWNERS))

_FOLDED = {name.casefold(): name for names, _ in reversed(_OWNERS) for name in names}


def framework_attribute(name: str) -> tuple[str, str] | None:
    """``(attribute, what it is)`` for the framework attribute ``name`` is, up to letter case, e.g.
    ``("named_parameters", "torch.nn.Module method")``; None when it is none."""
    found = _FOLDED.get(name.casefold())
    if found is None:
        return None
    return found, next(what for names, what in _OWNERS if found in names)
