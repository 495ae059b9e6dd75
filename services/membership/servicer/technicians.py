"""The banner portal's RPCs for technicians and the program's training courses."""

from __future__ import annotations

from guichet.membership.v1 import membership_pb2 as pb

from services.kit.auth import current_principal
from services.membership.domain.technicians import (
    CourseRegistrationView,
    CourseView,
    add_technician,
    create_training_course,
    list_course_registrations,
    list_technicians,
    list_training_courses,
    register_technician,
    update_course_registration,
)
from services.membership.models import CourseRegistrationStatus, Technician
from services.membership.servicer.base import (
    Context,
    ServicerBase,
    name_of,
    proto_day,
    proto_page,
    proto_time,
)

_COURSE_STATUS = {
    CourseRegistrationStatus.REGISTERED: pb.COURSE_REGISTRATION_STATUS_REGISTERED,
    CourseRegistrationStatus.CANCELLED: pb.COURSE_REGISTRATION_STATUS_CANCELLED,
    CourseRegistrationStatus.COMPLETED: pb.COURSE_REGISTRATION_STATUS_COMPLETED,
    CourseRegistrationStatus.ABSENT: pb.COURSE_REGISTRATION_STATUS_ABSENT,
}


def technician_to_proto(technician: Technician) -> pb.Technician:
    return pb.Technician(
        id=str(technician.id),
        workshop_id=str(technician.workshop_id),
        first_name=technician.first_name,
        last_name=technician.last_name,
        email=technician.email,
        create_time=proto_time(technician.created_at),
    )


def course_to_proto(view: CourseView) -> pb.TrainingCourse:
    c = view.course
    return pb.TrainingCourse(
        id=str(c.id),
        code=c.code,
        title=c.title,
        description=c.description,
        starts_on=proto_day(c.starts_on),
        ends_on=proto_day(c.ends_on),
        location=c.location,
        capacity=c.capacity,
        seats_taken=view.seats_taken,
        create_time=proto_time(c.created_at),
    )


def course_registration_to_proto(view: CourseRegistrationView) -> pb.CourseRegistration:
    r, t = view.registration, view.technician
    return pb.CourseRegistration(
        id=str(r.id),
        course=course_to_proto(view.course),
        technician_id=str(t.id),
        technician_name=f"{t.first_name} {t.last_name}",
        workshop_id=str(r.workshop_id),
        status=_COURSE_STATUS[CourseRegistrationStatus(r.status)],
        create_time=proto_time(r.created_at),
        update_time=proto_time(r.updated_at),
    )


class TechnicianRpcs(ServicerBase):
    """A workshop's technicians and the program's training courses."""

    # --- technicians and courses -----------------------------------------------------------------

    async def AddTechnician(
        self, request: pb.AddTechnicianRequest, context: Context
    ) -> pb.AddTechnicianResponse:
        async with self._sessions.begin() as session:
            technician = await add_technician(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                first_name=request.first_name,
                last_name=request.last_name,
                email=request.email,
            )
        return pb.AddTechnicianResponse(technician=technician_to_proto(technician))

    async def ListTechnicians(
        self, request: pb.ListTechniciansRequest, context: Context
    ) -> pb.ListTechniciansResponse:
        async with self._sessions.begin() as session:
            page = await list_technicians(
                session=session,
                actor=current_principal(),
                workshop_id=request.workshop_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListTechniciansResponse(
            technicians=[technician_to_proto(t) for t in page.items],
            page=proto_page(page.next_page_token),
        )

    async def CreateTrainingCourse(
        self, request: pb.CreateTrainingCourseRequest, context: Context
    ) -> pb.CreateTrainingCourseResponse:
        async with self._sessions.begin() as session:
            view = await create_training_course(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                # Courses are the program team's days: the service's default zone.
                time_zone=self._settings.default_time_zone,
                code=request.code,
                title=request.title,
                description=request.description,
                starts_on=request.starts_on,
                ends_on=request.ends_on,
                location=request.location,
                capacity=request.capacity,
            )
        return pb.CreateTrainingCourseResponse(course=course_to_proto(view))

    async def ListTrainingCourses(
        self, request: pb.ListTrainingCoursesRequest, context: Context
    ) -> pb.ListTrainingCoursesResponse:
        async with self._sessions.begin() as session:
            page = await list_training_courses(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                # Courses are the program team's days: the service's default zone.
                time_zone=self._settings.default_time_zone,
                upcoming_only=request.upcoming_only,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListTrainingCoursesResponse(
            courses=[course_to_proto(c) for c in page.items], page=proto_page(page.next_page_token)
        )

    async def RegisterTechnician(
        self, request: pb.RegisterTechnicianRequest, context: Context
    ) -> pb.RegisterTechnicianResponse:
        async with self._sessions.begin() as session:
            view = await register_technician(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                # Courses are the program team's days: the service's default zone.
                time_zone=self._settings.default_time_zone,
                workshop_id=request.workshop_id,
                course_id=request.course_id,
                technician_id=request.technician_id,
            )
        return pb.RegisterTechnicianResponse(registration=course_registration_to_proto(view))

    async def UpdateCourseRegistration(
        self, request: pb.UpdateCourseRegistrationRequest, context: Context
    ) -> pb.UpdateCourseRegistrationResponse:
        async with self._sessions.begin() as session:
            view = await update_course_registration(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                # Courses are the program team's days: the service's default zone.
                time_zone=self._settings.default_time_zone,
                workshop_id=request.workshop_id,
                registration_id=request.registration_id,
                status=name_of(request.status, _COURSE_STATUS),
            )
        return pb.UpdateCourseRegistrationResponse(registration=course_registration_to_proto(view))

    async def ListCourseRegistrations(
        self, request: pb.ListCourseRegistrationsRequest, context: Context
    ) -> pb.ListCourseRegistrationsResponse:
        async with self._sessions.begin() as session:
            page = await list_course_registrations(
                session=session,
                actor=current_principal(),
                workshop_id=request.workshop_id,
                technician_id=request.technician_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListCourseRegistrationsResponse(
            registrations=[course_registration_to_proto(r) for r in page.items],
            page=proto_page(page.next_page_token),
        )
