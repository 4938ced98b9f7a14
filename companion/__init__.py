"""companion: the tested PyTorch package behind the PMLE Section 4 course."""
__version__ = "0.1.0"

# Where the course lives. The book's _config.yml and every notebook's Colab cell
# must agree with these (tests/notebooks/test_hygiene.py checks).
REPOSITORY_URL = "https://github.com/pmle-course/section4-companion"
RELEASE_TAG = "v0.1.0"
