"""The company tree in display order, shared by the companies and users sections."""

from panel.models import Company


def tree_rows(companies: list[Company], root_id: int) -> list[tuple[Company, int]]:
    """(company, depth) in tree order from `root_id`, children by name."""
    children: dict[int | None, list[Company]] = {}
    for company in companies:
        children.setdefault(company.parent_id, []).append(company)
    for items in children.values():
        items.sort(key=lambda c: c.name.lower())
    by_id = {c.id: c for c in companies}
    rows: list[tuple[Company, int]] = []
    stack = [(by_id[root_id], 0)] if root_id in by_id else []
    while stack:
        company, depth = stack.pop()
        rows.append((company, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(company.id, [])))
    return rows
