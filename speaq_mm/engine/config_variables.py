"""Top-level config variables that ``--cfg-options`` can override everywhere the config used them.

mmengine evaluates a config file once: after ``real_ratio = 0.7`` and ``source_ratio=[real_ratio, ...]``
both keys hold 0.7, and ``--cfg-options real_ratio=0.5`` changes only the first. A config therefore lists, in
its ``variable_targets`` dict, the dotted keys that take each variable's value, and
:func:`apply_variable_overrides` copies an overridden variable into them (the mix configs in
configs/_base_/datasets/ use this).
"""

VARIABLE_TARGETS_KEY = 'variable_targets'


def _set_key(cfg, key, value):
    """Set the existing dotted ``key`` (list positions as numbers) of ``cfg`` to ``value``.

    ``Config.merge_from_dict`` cannot replace a number inside a list, which the ratio targets need.
    """
    node, parts = cfg, key.split('.')
    for depth, part in enumerate(parts):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            part = int(part)
        elif not (hasattr(node, 'keys') and part in node):  # neither a list position nor a Config(Dict) key
            raise KeyError(f'{VARIABLE_TARGETS_KEY} names "{key}", which the config does not have '
                           f'(no "{part}")')
        if depth == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def apply_variable_overrides(cfg, cfg_options):
    """Copy overridden top-level variables into the keys ``cfg.variable_targets`` lists for them.

    Call it after ``cfg.merge_from_dict(cfg_options)``. Keys given explicitly in ``cfg_options`` win over
    values copied from a variable.

    Args:
        cfg (mmengine.Config): the loaded config, ``cfg_options`` already merged.
        cfg_options (dict | None): the ``--cfg-options`` overrides.
    """
    targets = cfg.get(VARIABLE_TARGETS_KEY) or {}
    options = cfg_options or {}
    for name, value in options.items():
        for key in targets.get(name, ()):
            _set_key(cfg, key, value)
    explicit = {key: value for key, value in options.items() if key not in targets}
    if explicit:
        cfg.merge_from_dict(explicit, allow_list_keys=True)
