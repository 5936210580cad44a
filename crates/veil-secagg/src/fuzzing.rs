//! Entry points for the fuzz targets in `fuzz/`, kept here so that the unit
//! tests replay the committed corpus through the same code.
