"""What sales see in Dynamics: system views, system charts and form sections that show dvsync's results.

``config`` reads ``mappings/views.toml``; ``xml`` builds the FetchXML, layout, chart and form XML;
``provision`` creates and keeps them in the org (``dvsync provision``, ``--forms``).
"""

from jobs.service.views.config import ViewsConfig, load_views, validate_views_against_org
from jobs.service.views.provision import CustomizationReport, provision_customizations, record_id_for

__all__ = [
    "CustomizationReport",
    "ViewsConfig",
    "load_views",
    "provision_customizations",
    "record_id_for",
    "validate_views_against_org",
]
