"""Every text a user reads about an import file: what is wrong and how to fix it.

Kept in one place so that a service manager (not a programmer) can review the wording.
Row messages follow the column name and the value, e.g.
"row 14, discharge_date: '2026-02-30' is not a date (use YYYY-MM-DD or DD/MM/YYYY)".
"""

# --- the file as a whole -------------------------------------------------------------------
FILE_NOT_FOUND = "{path} does not exist or is not a file"
EMPTY_FILE = "the file is empty: it needs a header row naming the columns, then one row per episode"
NOT_UTF8 = (
    "row {row} is not UTF-8 text: in Excel use Save As > 'CSV UTF-8 (Comma delimited)' and "
    "import the new file"
)
BAD_CSV = "row {row} cannot be read as CSV ({problem}); check for an unclosed quote mark"
MISSING_COLUMNS = (
    "the file has no column {columns}: add it to the header row (expected columns: {expected})"
)
DOUBLED_COLUMNS = "the header names {columns} more than once: keep one of each"
UNKNOWN_COLUMNS = "ignoring column(s) the tracker does not use: {columns}"

# --- one value -------------------------------------------------------------------------------
REQUIRED = "is empty: this column must have a value"
REQUIRED_DATE = "is empty: give a date (YYYY-MM-DD or DD/MM/YYYY)"
REQUIRED_YES_NO = "is empty: write yes or no"
REQUIRED_NUMBER = "is empty: give a whole number (0 if none)"
TOO_LONG = "is too long (at most {limit} characters)"
NOT_A_DATE = "is not a date (use YYYY-MM-DD or DD/MM/YYYY)"
TWO_DIGIT_YEAR = "has a two-digit year: write the year in full (DD/MM/YYYY or YYYY-MM-DD)"
NOT_YES_NO = "is not yes or no (use yes/no, y/n, true/false or 1/0)"
NOT_A_NUMBER = "is not a number (give a whole number, e.g. 4)"
NOT_WHOLE = "is not a whole number (give a whole number, e.g. 4)"
UNKNOWN_PATTERN = (
    "is not an engagement pattern (use rapid, anchored or with_only, or leave it empty "
    "to have it derived from sessions and connected_external)"
)
NEGATIVE_SESSIONS = "is negative: give the number of link-worker sessions (0 or more)"
TOO_MANY_SESSIONS = "is more sessions than plausible (at most {limit}): check the value"
IMD_RANGE = "is not an IMD quintile (use 1 = most deprived to 5 = least deprived, or leave empty)"
BASELINE_RANGE = "is out of range (use a whole number from {low} to {high}, or leave empty)"
BIRTH_YEAR_RANGE = "is not a plausible year of birth (use a 4-digit year from {low} to {high})"
DISCHARGE_BEFORE_REFERRAL = (
    "is before the referral date {referral}: check both dates (discharge comes after referral)"
)
DISCHARGE_IN_FUTURE = (
    "is in the future (today is {today}): import episodes once the patient has been discharged"
)
PHONE_REQUIRED_WITH_CONSENT = (
    "is empty but consent_sms is yes: give the patient's mobile number, or set consent_sms to no"
)
DUPLICATE_EPISODE = (
    "appears more than once in the file (first on row {first}): keep one row per episode"
)

# Spellings of gender mapped to one stored value; anything else is kept as written (lowercase).
GENDER_ALIASES = {
    "m": "male",
    "man": "male",
    "male": "male",
    "f": "female",
    "woman": "female",
    "female": "female",
}

# --- summaries -------------------------------------------------------------------------------
NOTHING_IMPORTED = (
    "{count} row(s) have problems, so nothing was imported. Fix them and import the file "
    "again, or use --skip-invalid to import the valid rows and write the others to a rejects file."
)
REJECTS_WRITTEN = "{count} row(s) were not imported; they are in {path} with a reason column."

# Rows naming a patient (or episode) whose data was erased on request are never enrolled again.
ERASED_ROWS = (
    "{count} row(s) name a patient whose data was erased on request and were not enrolled; "
    "remove them from the source system's export"
)
