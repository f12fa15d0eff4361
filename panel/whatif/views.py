"""What-if pages (the LCR sheet and previews): filled in below."""
