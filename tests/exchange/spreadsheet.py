"""IOM's HTCDS template and Haven's XLSX export, handled by another tool (openpyxl), for
tests/api/exchange.rs.

    spreadsheet.py fill TEMPLATE OUT   fills two rows of IOM's template by its field names (row 1)
    spreadsheet.py read FILE            prints the first sheet's rows as JSON
"""
import json
import sys

import openpyxl

ROWS = [
    {"prs_Gender": "Masculine", "prs_Citizenship": "PE", "vic_TraffickingStatus": "ActualVictimOfTrafficking",
     "vic_MethodOfRecruitment": "ThroughOnlineSocialNetworks", "vic_MethodsOfControl": "DebtBondage;WithholdsDocuments",
     "vic_TypeOfExploitation": "ForcedLabour", "vic_ForcedLabourIndustry": "J_InformationAndCommunication",
     "vic_LocationOfRecruitment": "PER", "vic_LocationOfExploitation": "MMR", "cas_Status": "Active",
     "con_Consent": True, "vic_TraffickinStatusDecisionMakingOrg": "NGO", "prs_FirstName": "Fictional Uno"},
    {"prs_Gender": "TransgenderFeminine", "prs_Citizenship": "BRA", "vic_TraffickingStatus": "PossibleVictimOfTrafficking",
     "vic_TypeOfExploitation": "SexualExploitation", "vic_TypeOfSexExploitation": "RemoteInteractiveServices",
     "vic_LocationOfExploitation": "SEN", "cas_Status": "Closed", "cas_ReasonForCaseClosure": "Lost contact",
     "prs_Birthdate": "2001-04-05"},
]


def fill(template, out):
    book = openpyxl.load_workbook(template)
    sheet = book.worksheets[0]
    columns = {cell.value: cell.column for cell in sheet[1] if cell.value}
    for offset, row in enumerate(ROWS):
        for name, value in row.items():
            sheet.cell(row=3 + offset, column=columns[name], value=value)
    book.save(out)


def read(path):
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    print(json.dumps([["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]))


if __name__ == "__main__":
    {"fill": lambda: fill(sys.argv[2], sys.argv[3]), "read": lambda: read(sys.argv[2])}[sys.argv[1]]()
