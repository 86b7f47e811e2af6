"""Documents to fax pages: format sniffing, rendering to TIFF-F (ghostscript, LibreOffice, the image and text
rasteriser), the page check that decodes every page, PDF copies and PNG previews; every converter sandboxed.

The fetcher renders every job's document with it, and faxsim the documents it sends. Importing the package loads
nothing: the sandboxed children (``python -m fax_render.raster``, ``python -S .../pagecheck.py``) import only their
own module and what it needs.
"""
