"""sqladmin (PyPI, pinned in the ``conformance`` extra) on a Starlette-only app: the admin is a
Starlette sub-app mounted at /admin. ``Broken`` is a model whose table was never created, so its
list page fails inside the mounted app with the database driver's error: a real 5xx nobody here wrote.
"""

from __future__ import annotations

from sqladmin import Admin, ModelView
from sqlalchemy import Integer, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Broken(Base):
    __tablename__ = "never_created"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
User.__table__.create(engine)  # type: ignore[attr-defined]


async def home(request: Request) -> JSONResponse:
    return JSONResponse({"app": "sqladmin"})


app = Starlette(routes=[Route("/", home)])
admin = Admin(app, engine)


class UserAdmin(ModelView, model=User):
    column_list = [User.id, User.name]  # noqa: RUF012 - sqladmin's documented form


class BrokenAdmin(ModelView, model=Broken):
    column_list = [Broken.id]  # noqa: RUF012


admin.add_view(UserAdmin)
admin.add_view(BrokenAdmin)
