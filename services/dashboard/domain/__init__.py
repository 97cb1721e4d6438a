"""Pure view building: snapshot values in, page/API view models out. No I/O, no wall clock."""
