struct sibling { long a; long b; };
