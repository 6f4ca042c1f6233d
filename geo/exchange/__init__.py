"""Files exchanged with offices: layer exports, Excel workbooks, spreadsheet-safe text."""
