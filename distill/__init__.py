"""distill: trains (or loads) the teacher, distills the student, writes the
artifacts folder that export/ and bench/ read."""
