"""starlette-admin (PyPI, pinned) mounted into a FastAPI app at /admin, over SQLAlchemy/sqlite.
``Broken``'s table was never created: its list page fails with the driver's error inside the mount.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Integer, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool
from starlette_admin.contrib.sqla import Admin, ModelView


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

app = FastAPI()


@app.get("/")
async def home() -> dict[str, str]:
    return {"app": "starlette-admin"}


admin = Admin(engine, title="conformance", secret_key="conformance-fixed-key")
admin.add_view(ModelView(User))
admin.add_view(ModelView(Broken))
admin.mount_to(app)
