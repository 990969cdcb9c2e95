#include "sibling.h"
typedef struct sibling nested_t;
