"""Regenerate ``handbook/data-retention.pdf`` (needs fpdf2: pip install 'herald[bench]').

python examples/rag/make_pdf.py
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

PAGES = [
    (
        "Data retention policy",
        "This policy says how long Northwind Loom keeps business records and personal data. "
        "Financial records such as invoices and payroll documents are kept for seven years "
        "after the end of the financial year, as required by accounting law.",
    ),
    (
        "Customer data",
        "Customer personal data is deleted 30 days after the customer contract ends, unless the "
        "law requires us to keep it longer. Backups are overwritten on a rolling 90-day cycle, "
        "so deleted data disappears from backups within 90 days.",
    ),
    (
        "Employee records",
        "Personnel files of former employees are kept for three years after they leave. "
        "Job applications of candidates who were not hired are deleted after six months. "
        "Questions about retention go to the data protection officer, Liis Tamm.",
    ),
]


def main() -> None:
    pdf = FPDF()
    pdf.set_title("Data retention policy")
    pdf.set_author("Northwind Loom")
    pdf.set_creation_date(__import__("datetime").datetime(2024, 1, 1))
    for title, body in PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, body)
    out = Path(__file__).parent / "handbook" / "data-retention.pdf"
    pdf.output(str(out))
    print(out)


if __name__ == "__main__":
    main()
