"""What is under test: one frozen Target type, the kinds that open one, and the gate every send passes.

    from harness.targets import open_target
    with open_target("lab") as target:      # or a target file, HOST:PORT, ...; a profile name too
        ...

Layout: target.py (Target, SafetyPolicy, errors), kinds.py (the registry, resolve, open_target),
gate.py (the send gate), one module per kind (embedded, lab, docker_stack + docker_images, file, address),
setup.py (scenario setup through provisioning), reach.py (OPTIONS ping), redact.py (secrets out of output).
"""

from harness.targets.kinds import open_target, resolve
from harness.targets.target import SafetyPolicy, Target, TargetError, TargetStartError

__all__ = ["SafetyPolicy", "Target", "TargetError", "TargetStartError", "open_target", "resolve"]
