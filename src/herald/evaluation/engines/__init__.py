"""Built-in evaluation engines, one module each (loaded by name through ``herald.evaluation.base``)."""
