"""Automatic label words and templates (LM-BFF section 5), each in two parts side by side: the
model-free ranking (``label_ranking``: word scores, assignments; ``template_candidates``: spans into
templates, the built-in pool) and the model runs that feed them (``labels``, ``templates``)."""
