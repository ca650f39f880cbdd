"""ClinicalTrials.gov API v2 study records: import (`record`, `results`), the records as
received and their versions (`sources`), and a newer version applied to its study (`updates`)."""
