"""Security tests: the access matrix over every route, fuzzing of every form, sessions."""
