"""Sign in: name and password (rate-limited per account and per address), or single sign-on."""
from common import sign_in_page

sign_in_page()
