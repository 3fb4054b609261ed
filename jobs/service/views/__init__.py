"""What sales see in Dynamics: system views, system charts and form sections that show dvsync's results.

``config`` reads ``mappings/views.toml``; ``xml`` builds the FetchXML, layout, chart and form XML;
``provision`` creates and keeps them in the org (``dvsync provision``, ``--forms``); ``read``
runs a provisioned view as sales see it.
"""

from jobs.service.views.config import ViewsConfig, load_views, validate_views_against_org
from jobs.service.views.provision import CustomizationReport, provision_customizations, record_id_for
from jobs.service.views.read import read_view

__all__ = [
    "CustomizationReport",
    "ViewsConfig",
    "load_views",
    "provision_customizations",
    "read_view",
    "record_id_for",
    "validate_views_against_org",
]
