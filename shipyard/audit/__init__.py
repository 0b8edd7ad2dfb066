"""Model audits: performance per segment and fairness between groups, judged against rules, stored on the
version (``shipyard audit model``). The measuring is :mod:`shipyard.data.fairness`; this package finds the
model and the data, renders the report and records it.

An audit is a tracked run in experiment ``audits/<model>`` holding ``audit/audit.json`` and a self-contained
``audit/audit.html``, with its overall metrics and each segment's fairness gaps as metrics. For a registered
version, the outcome is also written on the version as tags (``shipyard.audit.status`` passed or failed,
``shipyard.audit.run``, ``shipyard.audit.at``, ``shipyard.audit.failed``), so that the model card and the
gates can read it. ``shipyard audit schedule`` runs it on a cron schedule as a pipeline
(:mod:`shipyard.audit.pipeline`), and a gate's ``audit:`` rule runs it before a version ships.
"""

from shipyard.audit.auditing import AuditResult, audit_model, load_audit_rules, render_html

__all__ = ["AuditResult", "audit_model", "load_audit_rules", "render_html"]
