#pragma once
struct only_once { char c; };
