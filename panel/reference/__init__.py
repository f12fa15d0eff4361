"""The reference sections' shared pieces: generic object views (`views`) and owner rules (`owners`).

Rate tables, code decks, time profiles, policies and DIDs are reference data that routing plans and accounts
point to. Each section declares its model, form, templates and who uses an object; `panel.reference.views`
writes the list, create, edit, delete and inline-grid views once for all of them.
"""
