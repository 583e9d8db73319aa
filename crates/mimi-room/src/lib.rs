//! A MIMI room: OpenMLS group plus room components, as hub (PublicGroup) or member
