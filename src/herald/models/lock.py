"""One lock for building models in this process.

transformers builds a model on the meta device by patching ``torch.nn.Module`` for the whole
process, not per thread, while ``from_pretrained`` runs. A second thread creating parameters
meanwhile (another ``from_pretrained``, PEFT adding LoRA layers) gets them on the meta device,
and the model fails later with "Cannot copy out of meta tensor; no data!". That happened when
the gateway loaded a freshly registered adapter while an in-process job loaded it for
evaluation (``herald up`` with the inline executor). Every place that builds a model in
Herald holds this lock; it is re-entrant, as an adapter's load loads its base first.
"""

from __future__ import annotations

import threading

MODEL_BUILD_LOCK = threading.RLock()

__all__ = ["MODEL_BUILD_LOCK"]
