"""The sync engine: WordPress pages in, decisions and page writes to the platform out."""
