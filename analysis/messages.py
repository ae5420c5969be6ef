"""Every user-facing text of the analysis (errors and report wording), in one place for review.

Error templates are `str.format` strings; `{source}` is the file name, `{row}` the data row
number counted from 1 (the header line is not a row), so row 17 is line 18 of a CSV file.
"""

NO_OUTCOMES_FILE = (
    "{path}: no outcomes file found (expected outcomes.parquet, outcomes.csv, outcomes.dta or "
    "outcomes.sav in this folder); point the analysis at an export folder or at one long-format "
    "CSV or Parquet file"
)
PATH_NOT_FOUND = "{path}: no such file or folder"
UNSUPPORTED_FILE = (
    "{path}: cannot read files of type '{suffix}'; use .csv, .parquet, .dta or .sav "
    "in the long format documented in DESIGN section 6"
)
UNREADABLE_FILE = "{path}: could not be read ({reason})"
UNREADABLE_CODEBOOK = (
    "{path}: codebook.json is not valid JSON ({reason}); re-export the study or remove it"
)
MISSING_COLUMNS = (
    "{source}: missing column{plural} {names}; the analysis needs one row per patient x wave "
    "with columns {required}"
)
CODEBOOK_MISSING_COLUMN = (
    "{source}: codebook.json describes column {name} but the data has no such column"
)
EMPTY = "{source}: has no rows"
NOT_A_NUMBER = "{source} row {row}: {column} {value!r} is not a number"
NOT_ALLOWED = "{source} row {row}: {column} {value!r} is not one of {allowed}"
OUT_OF_RANGE = "{source} row {row}: {column} {value!r} is outside {low} to {high}"
NOT_WHOLE = "{source} row {row}: {column} {value!r} is not a whole number"
MISSING_VALUE = (
    "{source} row {row}: {column} is empty; the models need {column} for every patient "
    "(fill it in, or leave that patient's rows out of the file)"
)
DUPLICATE_WAVE = "{source} row {row}: patient {pid} has wave {wave} more than once"
NOT_CONSTANT = (
    "{source} row {row}: {column} {value!r} differs from an earlier row of patient {pid}; "
    "{column} must be the same at every wave"
)
ANSWER_WITHOUT_RESPONSE = (
    "{source} row {row}: responded is 0 but {column} has the value {value!r}; "
    "set responded to 1 or clear the answer"
)
MORE_PROBLEMS = "... and {count} more problem{plural} of the same kinds"
NO_FOLLOW_UP = (
    "{source}: nobody answered at {waves} months, so change from baseline cannot be modelled; "
    "the analysis needs answers at both 6 and 12 months"
)
TOO_FEW = "{model}: too few usable rows ({n}) to fit {formula}"

SUPPRESSED = "<5"
SUPPRESSION_NOTE = (
    "Counts under 5 are shown as <5 and the percentages and means that rest on them are left "
    "out, so that small groups cannot be identified. Run with --no-suppression to show them."
)
NO_SUPPRESSION_NOTE = (
    "Small-cell suppression is OFF: this report may identify individuals. Do not share it."
)
