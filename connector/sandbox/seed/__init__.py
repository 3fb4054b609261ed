"""The sandbox's seed generator: realistic, deterministic Dataverse tables and their ground truth.

``generate(size, seed)`` builds the tables; ``write_ground_truth`` saves the answers the jobs are
graded against; the label tables describe the choice columns the generator fills.
"""

from connector.sandbox.seed.generator import SIZES, TABLES, SeedData, generate, write_ground_truth
from connector.sandbox.seed.labels import BOOLEAN_LABELS, DATE_ONLY_COLUMNS, OPTION_LABELS, STATUS_STATE

__all__ = [
    "BOOLEAN_LABELS",
    "DATE_ONLY_COLUMNS",
    "OPTION_LABELS",
    "SIZES",
    "STATUS_STATE",
    "TABLES",
    "SeedData",
    "generate",
    "write_ground_truth",
]
