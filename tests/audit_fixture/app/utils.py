"""Stand-ins for the capture helpers the fixture imports."""


def capture_provider_error(exc: BaseException, provider: str, model: object) -> None:
    return None


class _TaskManager:
    def create_task(self, coro: object) -> None:
        return None


task_manager = _TaskManager()
