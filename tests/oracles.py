"""Reference computations the tests check the panel against: the slow, obviously right way."""


def brute_billed(duration: int, min_time: int, interval: int) -> int:
    """Billed seconds by counting: start at the min time and add intervals until the call is covered."""
    if duration == 0:
        return 0
    billed = min_time
    while billed < duration:
        billed += interval
    return billed
